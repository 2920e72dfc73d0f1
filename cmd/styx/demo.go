package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"

	"github.com/styx-tee/styx/demo"
)

func init() {
	register(&command{name: "demo", args: "[--json] [--plot FILE] [--data-dir DIR] [--policies DIR]",
		summary: "run the hospitals scenario end to end on an in-process node (simulated TEE)", run: runDemo})
}

func runDemo(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "print the report as JSON instead of the story")
	plot := fs.String("plot", "styx-demo-training.png", "write the training curve to `FILE` (empty: none)")
	dataDir := fs.String("data-dir", "", "keep the node's state in `DIR` (default: a temporary directory)")
	epochs := fs.Int("epochs", 40, "epochs of the joint training")
	policies := fs.String("policies", "", "take the hospitals' policy templates (hospital-a.yaml …) from `DIR` where it has them; outcomes are still checked against the story")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	var out io.Writer = e.stdout
	if *asJSON {
		out = e.stderr
	}
	opts := demo.Options{Out: out, Terminal: isTerminal(out), DataDir: *dataDir, PlotPath: *plot, Epochs: *epochs}
	if *policies != "" {
		opts.Policies = os.DirFS(*policies)
	}
	rep, err := demo.Run(ctx, opts)
	if *asJSON && rep != nil {
		e.stdout.Write(append(rep.JSON(), '\n'))
	}
	if err != nil {
		return err
	}
	if !rep.OK {
		return errors.New("some outcomes differed from the expected ones")
	}
	return nil
}
