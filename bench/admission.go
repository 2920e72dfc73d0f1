package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/sandbox"
)

func init() {
	register(&section{name: "admission", summary: "job admission overhead for 3 input Pads against the same program on plaintext", run: benchAdmission})
}

func benchAdmission(fs *flag.FlagSet, args []string) error {
	runs := fs.Int("runs", 50, "measure `N` jobs")
	asJSON := fs.Bool("json", false, "print the figures as JSON (the text goes to stderr)")
	profile := profileFlag(fs)
	fs.Parse(args)
	stop, err := profile()
	if err != nil {
		return err
	}
	defer stop()
	out := textOut(*asJSON)
	r, err := runAdmission(context.Background(), out, max(1, *runs))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	return nil
}

// textOut is where a section prints its text: stdout, or stderr when stdout carries JSON.
func textOut(asJSON bool) io.Writer {
	if asJSON {
		return os.Stderr
	}
	return os.Stdout
}

// runAdmission measures, job after job on one node with three WDBC Pads of three owners:
//
//   - rtt: a signed API round trip that reads one Pad's metadata (the transport and request
//     authentication every call pays, for reference);
//   - explain: the dry run of the job's admission (three chains loaded, six decisions);
//   - admit: SubmitJob until the job is queued: request authentication, spec and program
//     checks, three chains loaded from the store, "use" and "derive" evaluated for every
//     input, one per-party use counter reserved per input (compare-and-set), the decision
//     audited, the job recorded and published on the work queue;
//   - job: SubmitJob with wait until the job is done: admission, the queue, the second
//     admission at start, three data keys unwrapped, the Pads decrypted and filtered, the
//     program run, the output checked, sealed as a derived Pad, audited and receipted;
//   - plain: the same program (rowcount) in the same sandbox on the same plaintext bytes in
//     memory, with no Pad, policy, key, store or API.
//
// The overhead of Styx's checks is admit (and, end to end, job − plain).
func runAdmission(ctx context.Context, out io.Writer, runs int) (*report, error) {
	m := thisMachine()
	fmt.Fprintf(out, "admission benchmark: rowcount on 3 WDBC Pads of 3 owners, %d runs\n%s\n\n", runs, m)
	b, err := startNode(ctx, 0)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	shares, _, _, err := wdbcShares(1)
	if err != nil {
		return nil, err
	}
	inputs, err := b.upload(ctx, shares)
	if err != nil {
		return nil, err
	}
	plain, err := newPlainRunner(ctx, "examples/programs/rowcount", shares, nil)
	if err != nil {
		return nil, err
	}
	defer plain.close(ctx)
	spec := func(wait bool) *api.JobSpec {
		return &api.JobSpec{Program: b.programs["count"], Inputs: inputs, Purpose: "bench",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Wait: wait}
	}
	c := b.clients[0]
	caller := b.owners[0].Identity()
	var rtt, explain, engine, admit, job, bare []cost
	step := func(sample *[]cost, f func() error) error {
		c, err := measured(f)
		*sample = append(*sample, c)
		return err
	}
	for i := range runs + 3 { // three warm-up runs, not kept
		var st *api.JobStatus
		err := step(&rtt, func() error { _, err := c.Pad(ctx, inputs["h1"]); return err })
		if err == nil {
			err = step(&explain, func() error { _, err := c.ExplainJob(ctx, spec(false)); return err })
		}
		if err == nil {
			err = step(&admit, func() (err error) { st, err = c.SubmitJob(ctx, spec(false)); return err })
		}
		if err == nil { // let it finish, untimed, so that the next figures run on an idle node
			err = b.finish(ctx, st.ID)
		}
		if err == nil {
			err = step(&engine, func() (err error) { st, err = b.Engine.SubmitJob(ctx, caller, spec(false)); return err })
		}
		if err == nil {
			err = b.finish(ctx, st.ID)
		}
		if err == nil {
			err = step(&job, func() error { _, err := b.runJob(ctx, spec(true)); return err })
		}
		if err == nil {
			err = b.Engine.Settle(ctx)
		}
		if err == nil {
			err = step(&bare, plain.run)
		}
		if err != nil {
			return nil, err
		}
		if i < 3 {
			rtt, explain, engine, admit, job, bare = nil, nil, nil, nil, nil, nil
		}
	}
	r := admissionReport(out, runs, rtt, explain, engine, admit, job, bare)
	r.Machine = m
	return r, nil
}

func admissionReport(out io.Writer, runs int, rttC, explainC, engineC, admitC, jobC, bareC []cost) *report {
	rtt, engine, admit, job, bare := walls(rttC), walls(engineC), walls(admitC), walls(jobC), walls(bareC)
	for _, l := range []struct {
		name string
		d    []cost
	}{{"signed API round trip (read one Pad)", rttC}, {"explain (dry-run admission)", explainC},
		{"admission in the engine (no API)", engineC}, {"admission: SubmitJob until queued", admitC}, {"whole job: SubmitJob --wait until done", jobC},
		{"same program on plaintext in the sandbox", bareC}} {
		fmt.Fprintf(out, "%s   CPU p50 %6.2f ms\n", walls(l.d).line(l.name), ms(cpus(l.d).pct(50)))
	}
	extra := job.pct(50) - bare.pct(50)
	fmt.Fprintf(out, "\nadmission checks beyond a signed round trip   p50 %8.2f ms\n", ms(admit.pct(50)-rtt.pct(50)))
	fmt.Fprintf(out, "whole-job extra latency over plaintext         p50 %8.2f ms   p90 %8.2f ms\n\n",
		ms(extra), ms(job.pct(90)-bare.pct(90)))
	goals := []goal{
		{Section: "admission", Figure: "admission of a 3-input job, p50", Value: ms(admit.pct(50)), Unit: "ms",
			Goal: "<= 5 ms", Paper: "~135 ms", Met: admit.pct(50) <= 5e6},
		{Section: "admission", Figure: "admission in the engine (no API), p50", Value: ms(engine.pct(50)), Unit: "ms",
			Goal: "<= 5 ms", Met: engine.pct(50) <= 5e6},
		{Section: "admission", Figure: "whole-job extra latency over plaintext, p50", Value: ms(extra), Unit: "ms",
			Goal: "<= 5 ms", Paper: "~135 ms", Met: extra <= 5e6},
	}
	for _, g := range goals {
		fmt.Fprintln(out, g)
	}
	return &report{Section: "admission", Params: map[string]any{"runs": runs, "inputs": 3, "program": "rowcount"},
		Figures: map[string]any{"rtt": rtt.figures(), "explain": walls(explainC).figures(), "engine_admit": engine.figures(), "admit": admit.figures(),
			"job": job.figures(), "plain": bare.figures(), "job_extra_p50_ms": ms(extra),
			"cpu_p50_ms": map[string]float64{"rtt": ms(cpus(rttC).pct(50)), "explain": ms(cpus(explainC).pct(50)), "engine_admit": ms(cpus(engineC).pct(50)),
				"admit": ms(cpus(admitC).pct(50)), "job": ms(cpus(jobC).pct(50)), "plain": ms(cpus(bareC).pct(50))}}, Goals: goals}
}

// plainRunner runs an example program in its own sandbox on plaintext shares, compiled once
// (as the node caches compiled programs too).
type plainRunner struct {
	rt     *sandbox.Runtime
	prog   *sandbox.Program
	shares [][]byte
	params []byte
	last   *plainHost
}

func newPlainRunner(ctx context.Context, pkg string, shares [][]byte, params []byte) (*plainRunner, error) {
	wasm, err := wasmbuild.Build(ctx, pkg, false)
	if err != nil {
		return nil, err
	}
	rt, err := sandbox.New(ctx, sandbox.Config{MemoryLimit: 2 << 30, Timeout: 10 * time.Minute, Cache: compiled})
	if err != nil {
		return nil, err
	}
	p, err := rt.Compile(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, err
	}
	return &plainRunner{rt: rt, prog: p, shares: shares, params: params}, nil
}

func (p *plainRunner) run() error {
	p.last = newPlainHost(p.shares, p.params)
	_, err := p.rt.RunProgram(context.Background(), p.prog, p.last)
	return err
}

func (p *plainRunner) close(ctx context.Context) { p.rt.Close(ctx) }
