package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/pipeline"
)

func init() {
	register(&command{name: "pipeline run", args: "[--json] MANIFEST.yaml",
		summary: "run a DAG of jobs declared in a manifest; intermediates stay in the cluster", run: runPipeline})
}

func runPipeline(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		data, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		m, err := pipeline.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", fs.Arg(0), err)
		}
		res, err := m.Run(ctx, c, func(sr pipeline.StageResult) {
			if cf.json {
				return
			}
			if sr.Error != "" {
				fmt.Fprintf(e.stdout, "✗ %s: %s\n", sr.Stage, sr.Error)
				return
			}
			fmt.Fprintf(e.stdout, "✓ %s: job %s done; outputs %s; receipt %s\n", sr.Stage, sr.Job.ID, outputsLine(sr.Job.Outputs), sr.Job.Receipt)
		})
		if err != nil {
			return err
		}
		if cf.json {
			if err := printJSON(e.stdout, res); err != nil {
				return err
			}
		}
		if !res.OK {
			return fmt.Errorf("pipeline stopped at stage %s", res.Stages[len(res.Stages)-1].Stage)
		}
		return nil
	})
}

func outputsLine(outs map[string]string) string {
	names := make([]string, 0, len(outs))
	for n := range outs {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+"="+outs[n])
	}
	return strings.Join(parts, " ")
}
