package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "policy update", args: "PADID POLICY-FILE", summary: "sign a new policy version for your Pad (with --key) and send it", run: runPolicyUpdate},
		&command{name: "revoke", args: "[--reason TEXT] PADID", summary: "revoke your Pad and, through it, everything derived from it", run: runRevoke},
	)
}

func runPolicyUpdate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	return withClient(e, fs, args, &cf, 2, func(c *api.Client, _ *party.Key) error {
		policy, err := readFileMax(fs.Arg(1), api.MaxPolicySize)
		if err != nil {
			return err
		}
		info, err := c.UpdatePolicy(ctx, fs.Arg(0), policy)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "Pad %s now has policy version %d\n", info.ID, info.PolicyVersion)
		return nil
	})
}

func runRevoke(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	reason := fs.String("reason", "", "why, recorded in the audit log")
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		res, err := c.Revoke(ctx, fs.Arg(0), *reason)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stdout, "revoked %s\n", res.Pad)
		for _, d := range res.Descendants {
			fmt.Fprintf(e.stdout, "  derived Pad %s is now unusable\n", d)
		}
		if len(res.Shredded) > 0 {
			fmt.Fprintf(e.stdout, "  %d derived data keys destroyed\n", len(res.Shredded))
		}
		return nil
	})
}

// readFileMax reads a file of at most max bytes.
func readFileMax(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s is over %d bytes", path, max)
	}
	return b, nil
}
