package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"runtime"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/internal/ml"
)

func init() {
	register(&section{name: "train", summary: "SVM training as a Styx job on 3 Pads against plain Go on the same data", run: benchTrain})
}

type trainOpts struct {
	repeat, epochs, runs int
}

func benchTrain(fs *flag.FlagSet, args []string) error {
	var o trainOpts
	fs.IntVar(&o.repeat, "repeat", 50, "repeat the WDBC training rows `N` times (ml.Dataset.Repeat)")
	fs.IntVar(&o.epochs, "epochs", 50, "training `epochs`")
	fs.IntVar(&o.runs, "runs", 5, "measure each contender `N` times; ratios use the fastest run of each")
	asJSON := fs.Bool("json", false, "print the figures as JSON (the text goes to stderr)")
	profile := profileFlag(fs)
	fs.Parse(args)
	stop, err := profile()
	if err != nil {
		return err
	}
	defer stop()
	o.repeat, o.epochs, o.runs = max(1, o.repeat), max(1, o.epochs), max(1, o.runs)
	r, err := runTrain(context.Background(), textOut(*asJSON), o)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	return nil
}

// runTrain trains the same linear SVM three ways on the same three CSV shares, contender after
// contender, o.runs times:
//
//   - job: svmtrain as a Styx job through the API on three Pads (SubmitJob --wait until done:
//     admission, queue, data keys, decryption, input rules, the sandbox, the model sealed as a
//     derived Pad, audit and receipt); its execution (job started → finished) is kept apart;
//   - sandbox: the same svmtrain module in the same sandbox on the plaintext shares in memory
//     (instantiation, CSV parsing in wasm, training with the native host kernels, output);
//   - go: the same steps in plain Go: parse the three CSVs, merge, train, marshal the model.
//
// It checks once that the job's model is bit for bit the plain Go model.
func runTrain(ctx context.Context, out io.Writer, o trainOpts) (*report, error) {
	m := thisMachine()
	shares, train, _, err := wdbcShares(o.repeat)
	if err != nil {
		return nil, err
	}
	size := 0
	for _, s := range shares {
		size += len(s)
	}
	fmt.Fprintf(out, "train benchmark: linear SVM, %d rows x %d features (WDBC training split x%d) in 3 Pads (%.1f MiB CSV), %d epochs, %d runs\n%s\n\n",
		train.Rows(), len(train.Features), o.repeat, float64(size)/(1<<20), o.epochs, o.runs, m)
	b, err := startNode(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	inputs, err := b.upload(ctx, shares)
	if err != nil {
		return nil, err
	}
	cfg, cfg1 := ml.Config{Epochs: o.epochs, Seed: 1}, ml.Config{Epochs: 1, Seed: 1}
	params, _ := json.Marshal(cfg)
	params1, _ := json.Marshal(cfg1)
	plain, err := newPlainRunner(ctx, "examples/programs/svmtrain", shares, params)
	if err != nil {
		return nil, err
	}
	defer plain.close(ctx)
	spec := &api.JobSpec{Program: b.programs["train"], Inputs: inputs, Purpose: "bench",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: params}
	var s trainSamples
	var model string
	var goModel, sbModel []byte
	for range o.runs {
		var st *api.JobStatus
		c, err := measuredClean(func() (err error) { st, err = b.runJob(ctx, spec); return err })
		if err == nil {
			err = b.Engine.Settle(ctx) // the spare guest started after the job, before the next figure
		}
		if err != nil {
			return nil, err
		}
		s.job, s.exec, model = append(s.job, c), append(s.exec, st.Finished.Sub(st.Started)), st.Outputs["model"]
		for _, x := range []struct {
			into *[]cost
			f    func() error
		}{
			{&s.sb, func() error {
				plain.params = params
				err := plain.run()
				sbModel = plain.last.outputs["model"].Bytes()
				return err
			}},
			{&s.sb1, func() error { plain.params = params1; return plain.run() }},
			{&s.goE, func() (err error) { goModel, err = trainGo(shares, cfg); return err }},
			{&s.go1, func() error { _, err := trainGo(shares, cfg1); return err }},
		} {
			c, err := measuredClean(x.f)
			if err != nil {
				return nil, err
			}
			*x.into = append(*x.into, c)
		}
	}
	if err := sameModel(ctx, b, model, goModel, sbModel); err != nil {
		return nil, err
	}
	r := trainReport(out, o, &s)
	r.Machine = m
	r.Params["rows"] = train.Rows()
	return r, nil
}

// measuredClean measures f from a collected heap. The contenders share a process with the node,
// whose live heap (≈ 50 MiB) every collection marks: 20–50 ms a cycle on the 2-core VM.
// Started from a collected heap, no contender's run (its garbage is a few tens of MiB: plain
// Go's ml.ReadCSV leaves a string per CSV field, the host's table parser less) reaches the next
// collection; without it, whichever contender crossed the threshold paid for a cycle that the
// node and the others had filled, at random.
func measuredClean(f func() error) (cost, error) {
	runtime.GC()
	return measured(f)
}

// trainSamples are the costs of every contender, run after run.
type trainSamples struct {
	job, sb, sb1, goE, go1 []cost
	exec                   durations
}

func walls(cs []cost) durations {
	d := make(durations, len(cs))
	for i, c := range cs {
		d[i] = c.wall
	}
	return d
}

func cpus(cs []cost) durations {
	d := make(durations, len(cs))
	for i, c := range cs {
		d[i] = c.cpu
	}
	return d
}

// orNA formats a ratio of differences, which noise can make meaningless (≤ 0).
func orNA(r float64) string {
	if r <= 0 || math.IsInf(r, 0) || math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", r)
}

// trainGo is svmtrain's work in plain Go.
func trainGo(shares [][]byte, cfg ml.Config) ([]byte, error) {
	var sets []*ml.Dataset
	for _, s := range shares {
		d, err := ml.ReadCSV(bytes.NewReader(s), ml.LabelColumn)
		if err != nil {
			return nil, err
		}
		sets = append(sets, d)
	}
	data, err := ml.Merge(ml.CommonFeatures(sets...), sets...)
	if err != nil {
		return nil, err
	}
	m, err := ml.Train(ml.Go{}, data, cfg, nil)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// sameModel checks that the job's model (released to its first owner) and the sandbox's are
// the plain Go model, so that the three contenders did the same work.
func sameModel(ctx context.Context, b *benchNode, id string, goModel, sandboxModel []byte) error {
	jobModel, err := b.release(ctx, id)
	if err != nil {
		return fmt.Errorf("release the model: %w", err)
	}
	if !bytes.Equal(jobModel, goModel) || !bytes.Equal(sandboxModel, goModel) {
		return errors.New("the models differ: the contenders did not do the same work")
	}
	return nil
}

func trainReport(out io.Writer, o trainOpts, s *trainSamples) *report {
	e := o.epochs
	fmt.Fprintf(out, "%-46s %10s %10s %10s\n", fmt.Sprintf("%d runs of each contender", o.runs), "wall p50", "wall min", "CPU min")
	row := func(name string, cs []cost) {
		fmt.Fprintf(out, "%-46s %7.1f ms %7.1f ms %7.1f ms\n", name, ms(walls(cs).pct(50)), ms(walls(cs).min()), ms(cpus(cs).min()))
	}
	row(fmt.Sprintf("Styx job, %d epochs (SubmitJob --wait)", e), s.job)
	fmt.Fprintf(out, "%-46s %7.1f ms %7.1f ms\n", "  of which execution (started -> finished)", ms(s.exec.pct(50)), ms(s.exec.min()))
	row(fmt.Sprintf("svmtrain in the sandbox, %d epochs", e), s.sb)
	row("svmtrain in the sandbox, 1 epoch", s.sb1)
	row(fmt.Sprintf("plain Go, %d epochs", e), s.goE)
	row("plain Go, 1 epoch", s.go1)
	fmt.Fprintln(out, "\nthe job's model, the sandbox's and plain Go's are bit for bit the same")
	// Ratios compare the fastest run of each contender (as the pad section does): on a shared
	// machine the minimum is the run least disturbed by other work.
	best := func(cs []cost, cpu bool) float64 {
		if cpu {
			return float64(cpus(cs).min())
		}
		return float64(walls(cs).min())
	}
	ratio := func(a, b []cost, cpu bool) float64 { return best(a, cpu) / best(b, cpu) }
	// Training alone: what the extra epochs cost, beyond instantiation, parsing and merging.
	epochs := func(cpu bool) float64 {
		return (best(s.sb, cpu) - best(s.sb1, cpu)) / (best(s.goE, cpu) - best(s.go1, cpu))
	}
	fmt.Fprintf(out, "\n%-46s %10s %10s\n", "Styx / plain Go (fastest runs)", "wall", "CPU")
	fmt.Fprintf(out, "%-46s %9.2fx %9.2fx\n", "whole job", ratio(s.job, s.goE, false), ratio(s.job, s.goE, true))
	fmt.Fprintf(out, "%-46s %9.2fx %9.2fx\n", "in-sandbox program (instantiate, parse, train)", ratio(s.sb, s.goE, false), ratio(s.sb, s.goE, true))
	fmt.Fprintf(out, "%-46s %9.2fx %10s\n", fmt.Sprintf("in-sandbox training alone (epochs 2..%d)", e), epochs(false), orNA(epochs(true)))
	fmt.Fprintf(out, "%-46s %9.2fx\n\n", "job execution (started -> finished)", float64(s.exec.min())/best(s.goE, false))
	goals := []goal{
		{Section: "train", Figure: "SVM training, whole Styx job / plain Go", Value: ratio(s.job, s.goE, false), Unit: "x",
			Goal: "<= 1.3x", Paper: "2.2x (NBench)", Met: ratio(s.job, s.goE, false) <= 1.3},
		{Section: "train", Figure: "SVM training, in-sandbox program / plain Go", Value: ratio(s.sb, s.goE, false), Unit: "x",
			Goal: "<= 1.3x", Paper: "2.2x (NBench)", Met: ratio(s.sb, s.goE, false) <= 1.3},
		{Section: "train", Figure: "SVM training, epochs alone, sandbox / Go", Value: epochs(false), Unit: "x",
			Goal: "<= 1.3x", Paper: "2.2x (NBench)", Met: epochs(false) > 0 && epochs(false) <= 1.3},
	}
	for _, g := range goals {
		fmt.Fprintln(out, g)
	}
	fig := func(cs []cost) map[string]float64 {
		return map[string]float64{"wall_p50_ms": ms(walls(cs).pct(50)), "wall_min_ms": ms(walls(cs).min()), "cpu_min_ms": ms(cpus(cs).min())}
	}
	return &report{Section: "train", Params: map[string]any{"repeat": o.repeat, "epochs": o.epochs, "runs": o.runs},
		Figures: map[string]any{"job": fig(s.job), "execution": s.exec.figures(), "sandbox": fig(s.sb), "sandbox_1_epoch": fig(s.sb1),
			"go": fig(s.goE), "go_1_epoch": fig(s.go1), "job_ratio": ratio(s.job, s.goE, false), "sandbox_ratio": ratio(s.sb, s.goE, false),
			"epochs_ratio": epochs(false), "job_ratio_cpu": ratio(s.job, s.goE, true), "sandbox_ratio_cpu": ratio(s.sb, s.goE, true),
			"epochs_ratio_cpu": epochs(true)}, Goals: goals}
}
