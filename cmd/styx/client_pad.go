package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "pad upload", args: "[--server URL] [--key FILE] PAD", summary: "upload a sealed Pad to a node and print its id", run: runPadUpload},
		&command{name: "pad list", args: "[--owner ID] [--json]", summary: "list the Pads on a node", run: runPadList},
		&command{name: "program add", args: "MODULE.wasm", summary: "upload a WebAssembly program and print its sha256", run: runProgramAdd},
	)
}

func runPadUpload(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := c.UploadPad(ctx, f)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintln(e.stdout, info.ID)
		return nil
	})
}

func runPadList(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	owner := fs.String("owner", "", "only Pads owned by party `ID`")
	return withClient(e, fs, args, &cf, 0, func(c *api.Client, _ *party.Key) error {
		var all []api.PadInfo
		req := &api.ListPadsRequest{Owner: *owner}
		for {
			page, err := c.ListPads(ctx, req)
			if err != nil {
				return err
			}
			all = append(all, page.Pads...)
			if page.Next == "" {
				break
			}
			req.After = page.Next
		}
		if cf.json {
			return printJSON(e.stdout, all)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tSIZE\tPOLICY\tOWNER")
		for _, p := range all {
			fmt.Fprintf(tw, "%s\t%s\t%d\tv%d\t%s\n", p.ID, p.State, p.Size, p.PolicyVersion, p.Owner)
		}
		return tw.Flush()
	})
}

func runProgramAdd(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := c.AddProgram(ctx, f)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintln(e.stdout, info.SHA256)
		return nil
	})
}
