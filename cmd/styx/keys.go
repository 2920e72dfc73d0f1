package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "keygen", args: "-o FILE", summary: "create a party key file and print its identity", run: runKeygen},
		&command{name: "identity", args: "[--id] FILE", summary: "print the public identity of a key file", run: runIdentity},
	)
}

func runKeygen(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	out := fs.String("o", "", "write the private key to `FILE` (mode 0600; never overwritten)")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	k, err := party.Generate()
	if err != nil {
		return err
	}
	if err := party.WriteKeyFile(*out, k, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s; id %s\nshare this identity so others can seal Pads to you:\n", *out, k.Identity().ID())
	fmt.Fprintln(e.stdout, k.Identity())
	return nil
}

func runIdentity(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	short := fs.Bool("id", false, "print the short party id instead of the full identity")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	k, err := loadKey(fs.Arg(0))
	if err != nil {
		return err
	}
	if *short {
		fmt.Fprintln(e.stdout, k.Identity().ID())
	} else {
		fmt.Fprintln(e.stdout, k.Identity())
	}
	return nil
}

// loadKey loads a private key file, turning a permission problem into advice.
func loadKey(path string) (*party.Key, error) {
	if path == "" {
		return nil, errors.New("no key file given; pass --key FILE (create one with: styx keygen -o FILE)")
	}
	return party.LoadKeyFile(path)
}
