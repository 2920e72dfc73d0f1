package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

func init() {
	register(
		&command{name: "attest", args: "--server URL --reference FILE [--allow-simulated] [-o FILE] [--bundle FILE]",
			summary: "verify a node's attestation, pin its TLS key and print the cluster identity", run: runAttest},
		&command{name: "attest verify", args: "--bundle FILE --reference FILE [--allow-simulated] [-o FILE]",
			summary: "verify a saved attestation bundle offline and print the cluster identity", run: runAttestVerify},
	)
}

// attestFlags are the flags both attest commands share.
type attestFlags struct {
	reference      *string
	allowSimulated *bool
	out            *string
}

func defineAttestFlags(fs *flag.FlagSet) attestFlags {
	return attestFlags{
		reference:      fs.String("reference", "", "reference values `FILE` (JSON): accepted TEE types, measurements, minimum TCB"),
		allowSimulated: fs.Bool("allow-simulated", false, "accept simulated nodes, which have no hardware protection (development only)"),
		out:            fs.String("o", "", "also write the cluster identity to `FILE`"),
	}
}

func (f attestFlags) load() (*tee.ReferenceValues, error) {
	if *f.reference == "" {
		return nil, errors.New("no reference values given; pass --reference FILE (see docs/attestation.md)")
	}
	ref, err := tee.LoadReferenceValues(*f.reference)
	if err != nil {
		return nil, err
	}
	if *f.allowSimulated {
		ref.AllowSimulated = true
	}
	return ref, nil
}

// report prints the outcome: the identity on stdout, the claims on stderr.
func (f attestFlags) report(e *env, id *party.Identity, c *tee.Claims) error {
	fmt.Fprintf(e.stderr, "attested cluster %s\n  %s\n", id.ID(), c)
	if c.Simulated {
		fmt.Fprintln(e.stderr, "WARNING: this node is SIMULATED: it has no hardware protection; never seal real data to it")
	}
	if *f.out != "" {
		if err := os.WriteFile(*f.out, []byte(id.String()+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

func runAttest(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	server := fs.String("server", "", "node `URL` (https://host:port)")
	bundleOut := fs.String("bundle", "", "save the verified bundle to `FILE` (for styx pad seal --to-cluster)")
	pins := fs.String("pins", e.getenv(envPins), "pin store `FILE` (env "+envPins+"; default: styx/pins.json in the user config directory)")
	af := defineAttestFlags(fs)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *server == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	ref, err := af.load()
	if err != nil {
		return err
	}
	pinFile := *pins
	if pinFile == "" {
		if pinFile, err = defaultPinFile(e); err != nil {
			return err
		}
	}
	c := &cluster.Client{Reference: ref, Pins: cluster.NewPinStore(pinFile)}
	a, err := c.Attest(ctx, *server)
	if err != nil {
		return err
	}
	if *bundleOut != "" {
		if err := os.WriteFile(*bundleOut, a.Bundle.Marshal(), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "pinned TLS key sha256:%x for %s in %s\n", a.Pin[:8], a.Server, pinFile)
	return af.report(e, a.Cluster, a.Claims)
}

func runAttestVerify(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	bundle := fs.String("bundle", "", "attestation bundle `FILE`")
	af := defineAttestFlags(fs)
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *bundle == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	ref, err := af.load()
	if err != nil {
		return err
	}
	id, c, err := cluster.VerifyBundleFile(*bundle, ref)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "verified offline: the bundle's freshness is unknown (its nonce was chosen by whoever fetched it)")
	return af.report(e, id, c)
}

// defaultPinFile is styx/pins.json under $XDG_CONFIG_HOME, or ~/.config.
func defaultPinFile(e *env) (string, error) {
	if d := e.getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "styx", "pins.json"), nil
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "styx", "pins.json"), nil
	}
	return "", errors.New("no config directory for the pin store; pass --pins FILE")
}
