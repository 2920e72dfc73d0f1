package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "release", args: "[-o FILE] PADID", summary: "fetch a Pad's plaintext, if its policy lets you, and decrypt it", run: runRelease},
		&command{name: "query", args: "--program SHA [--in FILE] [-o FILE] PADID", summary: "ask a model Pad one question (input from --in or stdin)", run: runQuery},
	)
}

func runRelease(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, false)
	out := fs.String("o", "", "write the plaintext to `FILE` (created only once all of it authenticated); default stdout")
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, key *party.Key) error {
		body, err := c.Release(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		defer body.Close()
		hdr, plain, err := pad.Open(body, key)
		if err != nil {
			return fmt.Errorf("open released Pad: %w", err)
		}
		if cf.pinned != nil && hdr.Signer.ID() != cf.pinned.Cluster {
			return fmt.Errorf("released Pad is signed by %s, not by the attested cluster %s", hdr.Signer.ID(), cf.pinned.Cluster)
		}
		if *out == "" {
			_, err := io.Copy(e.stdout, plain)
			return err
		}
		return writeFileAtomic(*out, plain)
	})
}

// writeFileAtomic writes r to a temporary file next to path and renames it into place only if
// every byte was read without error, so a failed release leaves nothing half-written.
func writeFileAtomic(path string, r io.Reader) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = io.Copy(tmp, r); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func runQuery(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, false)
	program := fs.String("program", "", "sha256 of the serving `PROGRAM` that answers from the model (required)")
	in := fs.String("in", "", "read the query input from `FILE`; default stdin")
	out := fs.String("o", "", "write the answer to `FILE`; default stdout")
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		input, err := readInput(e, *in)
		if err != nil {
			return err
		}
		if *program == "" {
			return errors.New("no serving program: pass --program SHA256 (add one with styx program add)")
		}
		answer, err := c.Query(ctx, fs.Arg(0), *program, input)
		if err != nil {
			return err
		}
		if *out != "" {
			return os.WriteFile(*out, answer, 0o600)
		}
		_, err = e.stdout.Write(answer)
		return err
	})
}

// readInput reads a query input from path or stdin, refusing more than api.MaxQueryInput.
func readInput(e *env, path string) ([]byte, error) {
	r := e.stdin
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, api.MaxQueryInput+1))
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxQueryInput {
		return nil, errors.New("query input is over 1 MiB")
	}
	return b, nil
}
