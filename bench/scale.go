package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/internal/ml"
)

func init() {
	register(&section{name: "scale", summary: "seal + upload + training job time per row at 1x, 10x, 100x the WDBC rows", run: benchScale})
}

type scaleOpts struct {
	sizes  []int
	epochs int
}

func benchScale(fs *flag.FlagSet, args []string) error {
	o := scaleOpts{}
	sizes := fs.String("sizes", "1,10,100", "comma-separated `multiples` of the WDBC training rows")
	fs.IntVar(&o.epochs, "epochs", 10, "training `epochs`")
	asJSON := fs.Bool("json", false, "print the figures as JSON (the text goes to stderr)")
	profile := profileFlag(fs)
	fs.Parse(args)
	stop, err := profile()
	if err != nil {
		return err
	}
	defer stop()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("bad size %q in -sizes", s)
		}
		o.sizes = append(o.sizes, n)
	}
	o.epochs = max(1, o.epochs)
	r, err := runScale(context.Background(), textOut(*asJSON), o)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	return nil
}

// scalePoint is the cost of one data size.
type scalePoint struct {
	Repeat int           `json:"repeat"`
	Rows   int           `json:"rows"`
	Bytes  int           `json:"bytes"`
	Seal   time.Duration `json:"seal_ns"`
	Upload time.Duration `json:"upload_ns"`
	Train  time.Duration `json:"train_job_ns"`
}

func (p scalePoint) total() time.Duration { return p.Seal + p.Upload + p.Train }

func (p scalePoint) perRow(d time.Duration) float64 {
	return float64(d) / float64(time.Microsecond) / float64(p.Rows)
}

// runScale seals the WDBC training rows repeated n times as three Pads, uploads them and
// trains the SVM on them as a Styx job (SubmitJob --wait until done), for every n, on one node.
func runScale(ctx context.Context, out io.Writer, o scaleOpts) (*report, error) {
	m := thisMachine()
	fmt.Fprintf(out, "scale benchmark: 3 Pads holding the WDBC training rows x %v, sealed, uploaded and trained on (%d epochs)\n%s\n\n", o.sizes, o.epochs, m)
	b, err := startNode(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	params, _ := json.Marshal(ml.Config{Epochs: o.epochs, Seed: 1})
	var points []scalePoint
	for _, n := range o.sizes {
		p, err := scaleOne(ctx, b, n, params)
		if err != nil {
			return nil, fmt.Errorf("x%d: %w", n, err)
		}
		points = append(points, p)
	}
	r := scaleReport(out, o, points)
	r.Machine = m
	return r, nil
}

func scaleOne(ctx context.Context, b *benchNode, n int, params []byte) (scalePoint, error) {
	shares, train, _, err := wdbcShares(n)
	if err != nil {
		return scalePoint{}, err
	}
	p := scalePoint{Repeat: n, Rows: train.Rows()}
	var sealed [][]byte
	p.Seal, err = timed(func() error {
		for i, s := range shares {
			p.Bytes += len(s)
			x, err := b.seal(i, s)
			if err != nil {
				return err
			}
			sealed = append(sealed, x)
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	inputs := map[string]string{}
	p.Upload, err = timed(func() error {
		for i, x := range sealed {
			info, err := b.clients[i].UploadPad(ctx, bytes.NewReader(x))
			if err != nil {
				return err
			}
			inputs[fmt.Sprintf("h%d", i+1)] = info.ID
		}
		return nil
	})
	if err != nil {
		return p, err
	}
	p.Train, err = timed(func() error {
		_, err := b.runJob(ctx, &api.JobSpec{Program: b.programs["train"], Inputs: inputs, Purpose: "bench",
			Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: params})
		return err
	})
	if err == nil {
		err = b.Engine.Settle(ctx) // the spare guest started after the job, before the next size
	}
	return p, err
}

func scaleReport(out io.Writer, o scaleOpts, pts []scalePoint) *report {
	fmt.Fprintf(out, "%6s %8s %10s   %12s %12s %12s %12s   %s\n", "size", "rows", "CSV", "seal µs/row", "upload µs/row", "train µs/row", "total µs/row", "total")
	for _, p := range pts {
		fmt.Fprintf(out, "%5dx %8d %8.1fMiB   %12.2f %12.2f %12.2f %12.2f   %7.2f s\n", p.Repeat, p.Rows, float64(p.Bytes)/(1<<20),
			p.perRow(p.Seal), p.perRow(p.Upload), p.perRow(p.Train), p.perRow(p.total()), p.total().Seconds())
	}
	fmt.Fprintln(out)
	var goals []goal
	for i := 1; i < len(pts); i++ {
		a, z := pts[i-1], pts[i]
		rows, cost := float64(z.Rows)/float64(a.Rows), float64(z.total())/float64(a.total())
		perRow := z.perRow(z.total()) / a.perRow(a.total())
		marginal := float64(z.total()-a.total()) / float64(time.Microsecond) / float64(z.Rows-a.Rows)
		fmt.Fprintf(out, "x%d -> x%d: %.0fx the rows cost %.2fx the time (per-row cost x%.2f; marginal cost %.2f µs per added row)\n",
			a.Repeat, z.Repeat, rows, cost, perRow, marginal)
		goals = append(goals, goal{Section: "scale", Figure: fmt.Sprintf("per-row cost, x%d / x%d", z.Repeat, a.Repeat),
			Value: perRow, Unit: "x", Goal: "<= 1.2x", Met: perRow <= 1.2})
	}
	fmt.Fprintln(out)
	for _, g := range goals {
		fmt.Fprintln(out, g)
	}
	return &report{Section: "scale", Params: map[string]any{"sizes": o.sizes, "epochs": o.epochs},
		Figures: map[string]any{"points": pts}, Goals: goals}
}
