package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "job submit", args: "--program SHA --input NAME=PADID... --purpose P [--output NAME:KIND]... [--param K=V]... [--wait]", summary: "submit a job over Pads", run: runJobSubmit},
		&command{name: "job explain", args: "--program SHA --input NAME=PADID... --purpose P [--output NAME:KIND]...", summary: "show the policy decision for every input and ancestor, without running", run: runJobExplain},
		&command{name: "job status", args: "[--wait] ID", summary: "show a job's state and outputs", run: runJobStatus},
	)
}

// jobFlags are the flags that describe a job.
type jobFlags struct {
	program, purpose        string
	inputs, outputs, params multiFlag
}

func (jf *jobFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&jf.program, "program", "", "program `SHA256` (from styx program add)")
	fs.StringVar(&jf.purpose, "purpose", "", "the `PURPOSE` of the job, checked against every input's policy")
	fs.Var(&jf.inputs, "input", "an input `NAME=PADID` (repeatable)")
	fs.Var(&jf.outputs, "output", "a declared output `NAME:KIND` (repeatable)")
	fs.Var(&jf.params, "param", "a program parameter `KEY=VALUE` (repeatable; VALUE is JSON if it parses, else a string)")
}

func (jf *jobFlags) spec() (*api.JobSpec, error) {
	spec := &api.JobSpec{Program: jf.program, Purpose: jf.purpose, Inputs: map[string]string{}}
	for _, in := range jf.inputs {
		name, id, ok := strings.Cut(in, "=")
		if !ok {
			return nil, fmt.Errorf("--input %q: want NAME=PADID", in)
		}
		if _, dup := spec.Inputs[name]; dup {
			return nil, fmt.Errorf("--input %s given twice", name)
		}
		spec.Inputs[name] = id
	}
	for _, out := range jf.outputs {
		o, err := api.ParseOutputSpec(out)
		if err != nil {
			return nil, err
		}
		spec.Outputs = append(spec.Outputs, o)
	}
	if len(jf.params) > 0 {
		params := map[string]json.RawMessage{}
		for _, p := range jf.params {
			k, v, ok := strings.Cut(p, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--param %q: want KEY=VALUE", p)
			}
			if json.Valid([]byte(v)) {
				params[k] = json.RawMessage(v)
			} else {
				params[k] = json.RawMessage(strconv.Quote(v))
			}
		}
		b, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		spec.Params = b
	}
	return spec, spec.Validate()
}

func runJobSubmit(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	var jf jobFlags
	cf.define(e, fs, true)
	jf.define(fs)
	wait := fs.Bool("wait", false, "wait until the job ends and print its outcome")
	return withClient(e, fs, args, &cf, 0, func(c *api.Client, _ *party.Key) error {
		spec, err := jf.spec()
		if err != nil {
			return err
		}
		spec.Wait = *wait
		st, err := c.SubmitJob(ctx, spec)
		if err == nil && *wait && !st.State.Final() {
			st, err = c.WaitJob(ctx, st.ID)
		}
		if err != nil {
			return err
		}
		return printJob(e.stdout, st, cf.json)
	})
}

func runJobExplain(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	var jf jobFlags
	cf.define(e, fs, true)
	jf.define(fs)
	return withClient(e, fs, args, &cf, 0, func(c *api.Client, _ *party.Key) error {
		spec, err := jf.spec()
		if err != nil {
			return err
		}
		ex, err := c.ExplainJob(ctx, spec)
		if err != nil {
			return err
		}
		if cf.json {
			return printJSON(e.stdout, ex)
		}
		printExplanation(e.stdout, ex)
		if !ex.Allowed {
			return fmt.Errorf("the job would be denied")
		}
		return nil
	})
}

func printExplanation(w io.Writer, ex *api.Explanation) {
	for _, d := range ex.Decisions {
		verdict := "allow"
		if !d.Allowed {
			verdict = "DENY "
		}
		where := d.Pad
		if d.Input != "" {
			where = d.Input + "=" + d.Pad
		}
		if len(d.Via) > 0 {
			where += " (ancestor via " + strings.Join(d.Via, " → ") + ")"
		}
		fmt.Fprintf(w, "%s %s %s\n", verdict, d.Action, where)
		for _, r := range d.Reasons {
			fmt.Fprintf(w, "      %s\n", r)
		}
	}
	if ex.Allowed {
		fmt.Fprintln(w, "the job would be admitted")
	}
}

func runJobStatus(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	wait := fs.Bool("wait", false, "wait until the job ends")
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		get := c.Job
		if *wait {
			get = c.WaitJob
		}
		st, err := get(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		return printJob(e.stdout, st, cf.json)
	})
}

// printJob prints a job's status; a job that ended badly is also an error (exit status 1).
func printJob(w io.Writer, st *api.JobStatus, asJSON bool) error {
	if asJSON {
		if err := printJSON(w, st); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "job %s: %s\n", st.ID, st.State)
		names := make([]string, 0, len(st.Outputs))
		for n := range st.Outputs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "output %s: %s\n", n, st.Outputs[n])
		}
		if st.Receipt != "" {
			fmt.Fprintf(w, "receipt: %s\n", st.Receipt)
		}
	}
	if st.Error != nil && (st.State == api.JobFailed || st.State == api.JobDenied || st.State == api.JobAborted) {
		return apiError(st.Error)
	}
	return nil
}
