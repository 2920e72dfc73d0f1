package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

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
	fs.IntVar(&o.repeat, "repeat", 20, "repeat the WDBC training rows `N` times (ml.Dataset.Repeat)")
	fs.IntVar(&o.epochs, "epochs", 50, "training `epochs`")
	fs.IntVar(&o.runs, "runs", 3, "measure each contender `N` times and keep the median")
	asJSON := fs.Bool("json", false, "print the figures as JSON (the text goes to stderr)")
	fs.Parse(args)
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
	fmt.Fprintf(out, "train benchmark: linear SVM, %d rows x %d features (WDBC training split x%d) in 3 Pads (%.1f MiB CSV), %d epochs, median of %d\n%s\n\n",
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
	cfg := ml.Config{Epochs: o.epochs, Seed: 1}
	params, _ := json.Marshal(cfg)
	plain, err := newPlainRunner(ctx, "examples/programs/svmtrain", shares, params)
	if err != nil {
		return nil, err
	}
	defer plain.close(ctx)
	spec := &api.JobSpec{Program: b.programs["train"], Inputs: inputs, Purpose: "bench",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: params}
	var job, exec, sb, goTrain durations
	var model string
	var goModel []byte
	for range o.runs {
		var st *api.JobStatus
		d, err := timed(func() (err error) { st, err = b.runJob(ctx, spec); return err })
		if err != nil {
			return nil, err
		}
		job, exec, model = append(job, d), append(exec, st.Finished.Sub(st.Started)), st.Outputs["model"]
		if d, err = timed(plain.run); err != nil {
			return nil, err
		}
		sb = append(sb, d)
		if d, err = timed(func() (err error) { goModel, err = trainGo(shares, cfg); return err }); err != nil {
			return nil, err
		}
		goTrain = append(goTrain, d)
	}
	if err := sameModel(ctx, b, model, goModel, plain.last.outputs["model"].Bytes()); err != nil {
		return nil, err
	}
	r := trainReport(out, o, job, exec, sb, goTrain)
	r.Machine = m
	r.Params["rows"] = train.Rows()
	return r, nil
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

func trainReport(out io.Writer, o trainOpts, job, exec, sb, goTrain durations) *report {
	fmt.Fprintln(out, job.line("Styx job: SubmitJob --wait until done"))
	fmt.Fprintln(out, exec.line("  of which execution (started → finished)"))
	fmt.Fprintln(out, sb.line("svmtrain in the sandbox on plaintext"))
	fmt.Fprintln(out, goTrain.line("plain Go (parse, merge, train, marshal)"))
	fmt.Fprintln(out, "\nthe job's model, the sandbox's and plain Go's are bit for bit the same")
	ratio := func(a durations) float64 { return float64(a.pct(50)) / float64(goTrain.pct(50)) }
	fmt.Fprintf(out, "job execution / plain Go  %.2fx\n\n", ratio(exec))
	goals := []goal{
		{Section: "train", Figure: "SVM training, in-sandbox compute / plain Go", Value: ratio(sb), Unit: "x",
			Goal: "<= 1.3x", Paper: "2.2x (NBench)", Met: ratio(sb) <= 1.3},
		{Section: "train", Figure: "SVM training, whole Styx job / plain Go", Value: ratio(job), Unit: "x",
			Goal: "<= 1.3x", Paper: "2.2x (NBench)", Met: ratio(job) <= 1.3},
	}
	for _, g := range goals {
		fmt.Fprintln(out, g)
	}
	return &report{Section: "train", Params: map[string]any{"repeat": o.repeat, "epochs": o.epochs, "runs": o.runs},
		Figures: map[string]any{"job": job.figures(), "execution": exec.figures(), "sandbox": sb.figures(), "go": goTrain.figures(),
			"job_ratio": ratio(job), "execution_ratio": ratio(exec), "sandbox_ratio": ratio(sb)}, Goals: goals}
}
