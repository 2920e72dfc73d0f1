package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/node"
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
	recovery := fs.String("recovery-key", "", "owner-held recovery key `FILE` sealing the cluster secret on tdx/snp")
	ref := fs.String("reference", "", "reference values `FILE` that joining nodes must meet (tdx/snp)")
	workers := fs.Int("workers", 1, "jobs run at once")
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
	cfg := node.Config{DataDir: *dataDir, TEE: *backend, TSMRoot: *tsm, RecoveryKeyFile: *recovery,
		Listen: *listen, Workers: *workers, Logger: logger}
	if *ref != "" {
		rv, err := tee.LoadReferenceValues(*ref)
		if err != nil {
			return err
		}
		cfg.Reference = rv
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
