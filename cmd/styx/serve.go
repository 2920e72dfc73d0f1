package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/node"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

func init() {
	register(&command{name: "serve", args: "[--data-dir DIR] [--tee sim|tdx|snp] [--listen ADDR]",
		summary: "run a Styx node (embedded store, sandbox, attested API); no other setup", run: runServe})
}

func runServe(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	dataDir := fs.String("data-dir", defaultDataDir(e), "node state `DIR` (created if missing)")
	backend := fs.String("tee", "sim", "TEE `BACKEND`: sim (development only), tdx or snp")
	listen := fs.String("listen", node.DefaultListen, "API `ADDR`ess")
	tsm := fs.String("tsm-root", "", "configfs-tsm root `DIR` for tdx/snp: the directory holding report/ (default /sys/kernel/config/tsm)")
	sevGuest := fs.String("sev-guest", "", "SEV guest `DEVICE` for snp's derived sealing key (default /dev/sev-guest)")
	escrowTo := fs.String("escrow-to", "", "tdx: `FILE` holding the owner-held recovery identity (styx1…) a new cluster's key is escrowed to")
	recovery := fs.String("recovery-key", "", "tdx: the escrow holder's party key `FILE`, to recover the cluster key after a restart; "+
		"RISK: whoever reads this file can open the cluster key, so keep it off the host except for the restart (see docs/attestation.md)")
	ref := fs.String("reference", "", "reference values `FILE` that joining nodes must meet (tdx/snp)")
	workers := fs.Int("workers", 1, "jobs run at once")
	noSpares := fs.Bool("no-spares", false, "start no spare guest for the next job of a program once one ends (saves its memory for up to 2 s, costs its start on the next job's path)")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	cfg := node.Config{DataDir: *dataDir, TEE: *backend, Listen: *listen, Workers: *workers, NoSpares: *noSpares, Logger: logger,
		Platform: cluster.Platform{TSMRoot: *tsm, SEVGuestDevice: *sevGuest}}
	if *ref != "" {
		rv, err := tee.LoadReferenceValues(*ref)
		if err != nil {
			return err
		}
		cfg.Reference = rv
	}
	if err := escrowFlags(&cfg, *escrowTo, *recovery); err != nil {
		return err
	}
	n, err := node.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	ln, err := n.Listen(*listen)
	if err != nil {
		return err
	}
	if err := writeNodeFiles(n, *dataDir); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "styx node serving on %s\n", n.URL())
	fmt.Fprintf(e.stdout, "cluster id: %s\n", n.Cluster.Identity().ID())
	fmt.Fprintf(e.stdout, "tee: %s\n", n.Claims)
	if n.Claims.Simulated {
		fmt.Fprintln(e.stdout, "WARNING: SIMULATED TEE: this node protects nothing; every output it produces says so. Development only.")
	}
	fmt.Fprintf(e.stdout, "attest it:   styx attest --server %s --reference %s\n", n.URL(), filepath.Join(*dataDir, "reference.json"))
	fmt.Fprintf(e.stdout, "seal to it:  styx pad seal --to-cluster %s …\n", filepath.Join(*dataDir, "cluster.bundle"))
	err = n.ServeListener(ctx, ln)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// escrowFlags sets the escrow recipient and the in-process escrow holder of a tdx node.
func escrowFlags(cfg *node.Config, escrowTo, recoveryKey string) error {
	if escrowTo != "" {
		data, err := os.ReadFile(escrowTo)
		if err != nil {
			return fmt.Errorf("--escrow-to: %w", err)
		}
		id, err := party.ParseIdentity(strings.TrimSpace(string(data)))
		if err != nil {
			return fmt.Errorf("--escrow-to %s: %w", escrowTo, err)
		}
		cfg.EscrowTo = id
	}
	if recoveryKey != "" {
		k, err := party.LoadKeyFile(recoveryKey)
		if err != nil {
			return fmt.Errorf("--recovery-key: %w", err)
		}
		cfg.Recovery = &cluster.LocalHolder{Key: k, Reference: cfg.Reference}
	}
	return nil
}

// writeNodeFiles writes the node's attestation bundle and, for a simulated node, reference
// values accepting it, so a developer can attest and seal to a local node at once.
func writeNodeFiles(n *node.Node, dir string) error {
	b, err := n.Cluster.Bundle(cluster.NewNonce())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cluster.bundle"), b.Marshal(), 0o644); err != nil {
		return err
	}
	if ref := n.SelfReference(); ref != nil {
		return os.WriteFile(filepath.Join(dir, "reference.json"), ref.Marshal(), 0o644)
	}
	return nil
}

// defaultDataDir is $STYX_DATA_DIR, or styx under the user's data directory.
func defaultDataDir(e *env) string {
	if d := e.getenv("STYX_DATA_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "styx")
	}
	return "styx-data"
}
