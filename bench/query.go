package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/internal/ml"
)

func init() {
	register(&section{name: "query", summary: "query throughput under policy against a bare TLS inference server for the same model", run: benchQuery})
}

type queryOpts struct {
	conc, rows, rounds, max int
	dur                     time.Duration
	only                    string // measure only this server under load ("" for all three)
}

func benchQuery(fs *flag.FlagSet, args []string) error {
	var o queryOpts
	fs.IntVar(&o.conc, "c", 4, "`N` concurrent loopback clients, each its own querier")
	fs.IntVar(&o.rows, "rows", 1, "`N` rows (patients) per query")
	fs.DurationVar(&o.dur, "duration", 5*time.Second, "measure each server for `D` per round")
	fs.IntVar(&o.max, "max", 50000, "stop a round after `N` queries")
	fs.IntVar(&o.rounds, "rounds", 2, "alternate the two servers `N` times")
	fs.StringVar(&o.only, "only", "", "load only `SERVER` (session, signed or bare): to profile one server; no ratio")
	asJSON := fs.Bool("json", false, "print the figures as JSON (the text goes to stderr)")
	profile := profileFlag(fs)
	fs.Parse(args)
	stop, err := profile()
	if err != nil {
		return err
	}
	defer stop()
	o.conc, o.rows, o.rounds, o.max = max(1, o.conc), max(1, o.rows), max(1, o.rounds), max(1, o.max)
	switch o.only {
	case "", "session", "signed", "bare":
	default:
		return fmt.Errorf("-only %q: want session, signed or bare", o.only)
	}
	r, err := runQuery(context.Background(), textOut(*asJSON), o)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(r)
	}
	return nil
}

// runQuery trains a model as a Styx job on three Pads, then measures the same queries
//
//   - through Styx with query sessions: each querier opens one session, then every query is
//     POST /v1/sessions/ID/query over the attested TLS API, MAC-authenticated; the model's
//     current chain (cached while nothing changed) decided, a use of each query counter taken
//     (from a lease), the answer computed by svmpredict on a warm sandbox instance, counted for
//     the batched audit and sealed with AES-256-GCM under the session's answer key;
//   - through Styx per request: POST /v1/pads/ID/query, each request Ed25519-signed by its
//     querier and its answer HPKE-sealed to the querier, who opens it; the same checks;
//   - through a bare server: net/http over TLS 1.3 on loopback, ml.Model.Answer on the same
//     model (released to its owner for the benchmark), no authentication.
//
// Each of o.conc clients keeps one query in flight; the servers alternate o.rounds times.
func runQuery(ctx context.Context, out io.Writer, o queryOpts) (*report, error) {
	m := thisMachine()
	fmt.Fprintf(out, "query benchmark: %d concurrent clients, %d row(s) per query, %d rounds of up to %s or %d queries per server\n%s\n\n",
		o.conc, o.rows, o.rounds, o.dur, o.max, m)
	b, err := startNode(ctx, o.conc)
	if err != nil {
		return nil, err
	}
	defer b.stop()
	model, query, err := trainModel(ctx, b, o.rows)
	if err != nil {
		return nil, err
	}
	raw, err := b.release(ctx, model)
	if err != nil {
		return nil, err
	}
	mdl, err := ml.ParseModel(raw)
	if err != nil {
		return nil, err
	}
	bare, err := startBare(mdl, o.conc)
	if err != nil {
		return nil, err
	}
	defer bare.close()
	styx, err := styxQuerier(ctx, b, model, query, mdl)
	if err != nil {
		return nil, err
	}
	sess, err := sessionQuerier(ctx, b, model, query, mdl)
	if err != nil {
		return nil, err
	}
	seq, err := sequential(ctx, b, model, sess, styx, func() error { return bare.query(0, query) })
	if err != nil {
		return nil, err
	}
	var xRes, sRes, bRes loadResult
	servers := []loadTarget{{"session", sess, &xRes}, {"signed", styx, &sRes}, {"bare", func(w int) error { return bare.query(w, query) }, &bRes}}
	for range o.rounds {
		for _, s := range servers {
			if o.only != "" && o.only != s.name {
				continue
			}
			r, err := load(o.conc, o.dur, o.max, s.do)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			s.res.add(r)
		}
	}
	if o.only != "" {
		b.Engine.FlushQueries(ctx)
		r := servers[slices.IndexFunc(servers, func(s loadTarget) bool { return s.name == o.only })].res
		fmt.Fprintf(out, "%s only: %.0f queries/s (%d queries, %.2f ms CPU per query, cores %.0f%% busy)\n%s\n",
			o.only, r.qps(), r.n, ms(r.cpuPerQuery()), 100*r.busy(), r.lat.line("  latency"))
		return &report{Section: "query", Params: map[string]any{"only": o.only}, Figures: map[string]any{"qps": r.qps()}}, nil
	}
	b.Engine.FlushQueries(ctx)
	r := queryReport(out, o, xRes, sRes, bRes, seq)
	r.Machine = m
	return r, nil
}

// trainModel trains a small model on the WDBC shares and returns its Pad id and a query of
// rows rows of the held-out set (CSV with a header).
func trainModel(ctx context.Context, b *benchNode, rows int) (string, []byte, error) {
	shares, _, test, err := wdbcShares(1)
	if err != nil {
		return "", nil, err
	}
	inputs, err := b.upload(ctx, shares)
	if err != nil {
		return "", nil, err
	}
	st, err := b.runJob(ctx, &api.JobSpec{Program: b.programs["train"], Inputs: inputs, Purpose: "bench",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: json.RawMessage(`{"epochs":20,"seed":1}`)})
	if err == nil {
		err = b.Engine.Settle(ctx) // the spare guest started after the job, before the queries
	}
	if err != nil {
		return "", nil, err
	}
	var csv bytes.Buffer
	if err := test.WriteCSV(&csv, ml.LabelColumn); err != nil {
		return "", nil, err
	}
	lines := strings.SplitAfter(csv.String(), "\n")
	if rows+1 > len(lines)-1 {
		return "", nil, fmt.Errorf("the test set has only %d rows", len(lines)-2)
	}
	return st.Outputs["model"], []byte(strings.Join(lines[:rows+1], "")), nil
}

// styxQuerier returns the per-worker query function through Styx, after one query per
// querier (which warms the model's pool) checked against plain Go's answer.
func styxQuerier(ctx context.Context, b *benchNode, model string, query []byte, m *ml.Model) (func(int) error, error) {
	want, err := m.Answer(query)
	if err != nil {
		return nil, err
	}
	var clients []*api.Client
	for _, k := range b.queriers {
		c, err := b.client(ctx, k)
		if err != nil {
			return nil, err
		}
		got, err := c.Query(ctx, model, b.programs["predict"], query)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("styx answers %.100s, plain Go %.100s", got, want)
		}
		clients = append(clients, c)
	}
	return func(w int) error {
		_, err := clients[w].Query(ctx, model, b.programs["predict"], query)
		return err
	}, nil
}

// sessionQuerier returns the per-worker query function through Styx query sessions, one
// session per querier, after one query per session checked against plain Go's answer.
func sessionQuerier(ctx context.Context, b *benchNode, model string, query []byte, m *ml.Model) (func(int) error, error) {
	want, err := m.Answer(query)
	if err != nil {
		return nil, err
	}
	var sessions []*api.QuerySession
	for _, k := range b.queriers {
		c, err := b.client(ctx, k)
		if err != nil {
			return nil, err
		}
		s, err := c.OpenQuerySession(ctx, model, b.programs["predict"])
		if err != nil {
			return nil, err
		}
		got, err := s.Query(ctx, query)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("styx session answers %.100s, plain Go %.100s", got, want)
		}
		sessions = append(sessions, s)
	}
	return func(w int) error {
		_, err := sessions[w].Query(ctx, query)
		return err
	}, nil
}

// loadTarget is one server under load: its name, one query by a worker, the sum of its rounds.
type loadTarget struct {
	name string
	do   func(worker int) error
	res  *loadResult
}

// loadResult sums the rounds of one server.
type loadResult struct {
	n       int
	elapsed time.Duration
	cpu     time.Duration // the process's CPU time: clients and server together
	lat     durations
}

func (r *loadResult) add(o loadResult) {
	r.n, r.elapsed, r.cpu, r.lat = r.n+o.n, r.elapsed+o.elapsed, r.cpu+o.cpu, append(r.lat, o.lat...)
}

func (r loadResult) qps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// cpuPerQuery is the process's CPU time per query, clients included.
func (r loadResult) cpuPerQuery() time.Duration { return r.cpu / time.Duration(max(r.n, 1)) }

// busy is the share of the machine's cores the process kept busy.
func (r loadResult) busy() float64 {
	return r.cpu.Seconds() / r.elapsed.Seconds() / float64(runtime.NumCPU())
}

// load runs conc workers, each calling do in a loop, until dur passes or maxN calls started.
func load(conc int, dur time.Duration, maxN int, do func(worker int) error) (loadResult, error) {
	var started atomic.Int64
	var mu sync.Mutex
	var firstErr error
	lats := make([]durations, conc)
	deadline := time.Now().Add(dur)
	t0, c0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for time.Now().Before(deadline) && started.Add(1) <= int64(maxN) {
				d, err := timed(func() error { return do(w) })
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				lats[w] = append(lats[w], d)
			}
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(t0), cpu: cpuTime() - c0}
	for _, l := range lats {
		r.n, r.lat = r.n+len(l), append(r.lat, l...)
	}
	return r, firstErr
}

// sequential measures one client's latency, one call at a time: a signed API round trip that
// reads the model's metadata, a query in a Styx session, a signed query through Styx, a query
// to the bare server.
func sequential(ctx context.Context, b *benchNode, model string, sess, styx func(int) error, bare func() error) ([4]durations, error) {
	var d [4]durations
	c, err := b.client(ctx, b.queriers[0])
	if err != nil {
		return d, err
	}
	for range 200 {
		for i, f := range []func() error{func() error { _, err := c.Pad(ctx, model); return err }, func() error { return sess(0) }, func() error { return styx(0) }, bare} {
			t, err := timed(f)
			if err != nil {
				return d, err
			}
			d[i] = append(d[i], t)
		}
	}
	return d, nil
}

func queryReport(out io.Writer, o queryOpts, x, s, b loadResult, seq [4]durations) *report {
	fmt.Fprintln(out, "one client, one call at a time (200 calls each):")
	fmt.Fprintln(out, seq[0].line("  signed round trip (model info)"))
	fmt.Fprintln(out, seq[1].line("  query in a Styx session"))
	fmt.Fprintln(out, seq[2].line("  signed query through Styx"))
	fmt.Fprintln(out, seq[3].line("  query to the bare TLS server"))
	fmt.Fprintf(out, "\n%d concurrent clients:\n", o.conc)
	line := func(name string, r loadResult) {
		fmt.Fprintf(out, "%-36s %8.0f queries/s  (%d queries, %.2f ms CPU per query, cores %.0f%% busy)\n",
			name, r.qps(), r.n, ms(r.cpuPerQuery()), 100*r.busy())
		fmt.Fprintln(out, r.lat.line("  latency"))
	}
	line("Styx session (policy, counter, audit)", x)
	line("Styx signed request (+HPKE answer)", s)
	line("bare net/http + TLS, same model", b)
	fmt.Fprintln(out)
	ratio, signed := x.qps()/b.qps(), s.qps()/b.qps()
	fmt.Fprintf(out, "per-request signed queries / bare TLS server    %5.2fx   (no goal: sessions are the fast path)\n", signed)
	g := goal{Section: "query", Figure: "query throughput, Styx / bare TLS server", Value: ratio, Unit: "x", Goal: ">= 0.5x", Met: ratio >= 0.5}
	fmt.Fprintln(out, g)
	return &report{Section: "query", Params: map[string]any{"concurrency": o.conc, "rows": o.rows, "rounds": o.rounds,
		"duration": o.dur.String(), "max": o.max},
		Figures: map[string]any{"session_qps": x.qps(), "styx_qps": s.qps(), "bare_qps": b.qps(),
			"session_latency": x.lat.figures(), "styx_latency": s.lat.figures(), "bare_latency": b.lat.figures(),
			"ratio": ratio, "signed_ratio": signed,
			"session_cpu_per_query_ms": ms(x.cpuPerQuery()), "styx_cpu_per_query_ms": ms(s.cpuPerQuery()), "bare_cpu_per_query_ms": ms(b.cpuPerQuery()),
			"session_busy": x.busy(), "styx_busy": s.busy(), "bare_busy": b.busy(),
			"sequential": map[string]any{"rtt": seq[0].figures(), "session": seq[1].figures(), "styx": seq[2].figures(), "bare": seq[3].figures()}}, Goals: []goal{g}}
}
