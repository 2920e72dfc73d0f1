package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/party"
)

// hasReason reports whether one reason line of a denied API error names both the Pad and the
// rule (a rule id or a field path such as lifecycle.expires).
func hasReason(err error, pad, rule string) bool {
	var e *api.Error
	if !errors.As(err, &e) {
		return false
	}
	return reasonIn(e.Reasons, pad, rule)
}

func reasonIn(reasons []string, pad, rule string) bool {
	for _, r := range reasons {
		if strings.Contains(r, "pad "+pad+" ") && strings.Contains(r, rule) {
			return true
		}
	}
	return false
}

func mustDeny(t *testing.T, what string, err error, pad, rule string) {
	t.Helper()
	if !errors.Is(err, api.ErrDenied) || !hasReason(err, pad, rule) {
		t.Fatalf("%s: %v, want a denial naming Pad %s and %s", what, err, pad, rule)
	}
}

// outputRulesPolicy lets its owner count rows and read the counts; ${output} adds output rules.
const outputRulesPolicy = `version: 1
owner: ${owner}
rules: |
  @id("owner-counts")
  permit (principal == Styx::Party::"${owner}", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { context.program == "${count}" };
output:
  kinds: [aggregate]
  ${output}
derive:
  aggregate:
    rules: |
      @id("owner-reads")
      permit (principal == Styx::Party::"${owner}", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

// TestOutputRulesEndToEnd admits jobs whose outputs break their input's output rules only once
// the program has run: the output pipeline refuses them with the rule, and nothing is sealed.
func TestOutputRulesEndToEnd(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	ownerK := newKey(t)
	owner := n.client(t, ownerK)
	count := addProgram(t, owner, "examples/programs/rowcount", false)
	pad := func(output string, rows int) *api.PadInfo {
		pol := expand(outputRulesPolicy, map[string]string{"owner": ownerK.Identity().ID().String(), "count": count, "output": output})
		return upload(t, owner, sealTo(t, ownerK, n.Cluster.Identity(), pol, "text/csv", csvRows(rows)))
	}
	countJob := func(t *testing.T, in string) *api.JobStatus {
		spec := &api.JobSpec{Program: count, Inputs: map[string]string{"in": in}, Purpose: "research",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}}
		st, err := owner.SubmitJob(ctx, spec) // admitted: the rules are checked on the real output
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		if st, err = owner.WaitJob(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
		return st
	}

	for _, c := range []struct {
		name, output string
		rows         int
		rule         string // "" when the output passes
	}{
		{"an output larger than max_bytes", "max_bytes: 8", 5, "output.max_bytes"},
		{"an output within max_bytes", "max_bytes: 4096", 5, ""},
		{"an aggregate of fewer rows than min_aggregation", "min_aggregation: 10", 3, "output.min_aggregation"},
		{"an aggregate of enough rows", "min_aggregation: 10", 20, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := pad(c.output, c.rows)
			st := countJob(t, in.ID)
			if c.rule == "" {
				mustDone(t, st)
				if body := release(t, owner, ownerK, st.Outputs["count"]); !strings.Contains(body, fmt.Sprintf(`"total":%d`, c.rows)) {
					t.Fatalf("count: %s", body)
				}
				return
			}
			if st.State != api.JobFailed || st.Error == nil || st.Error.Code != api.CodeDenied {
				t.Fatalf("job is %s (%s), want failed by the output pipeline", st.State, fmtErr(st.Error))
			}
			if !strings.Contains(st.Error.Message, "output count") || !reasonIn(st.Error.Reasons, in.ID, c.rule) {
				t.Fatalf("job error %s does not name the output, the Pad and %s", fmtErr(st.Error), c.rule)
			}
			if len(st.Outputs) != 0 || st.Receipt != "" {
				t.Fatalf("refused job has outputs %v, receipt %q", st.Outputs, st.Receipt)
			}
			if kids := children(t, owner, in.ID); len(kids) != 0 {
				t.Fatalf("a refused output left derived Pads %v", kids)
			}
		})
	}
}

// readOnePolicy lets the consumer use either Pad with readone; ${aggregate} says what an
// aggregate derived from the Pad may do.
const readOnePolicy = `version: 1
owner: ${owner}
rules: |
  @id("consumer-reads")
  permit (principal == Styx::Party::"${consumer}", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { context.program == "${readone}" };
output:
  kinds: [aggregate]
derive:
  aggregate:
    rules: |
      ${aggregate}
tee: {allow_simulated: true}
`

// TestDerivedFromWhatWasRead gives a program two inputs of which it reads one: the derived Pad
// descends from that input alone, and only that input's policy governs it.
func TestDerivedFromWhatWasRead(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	aK, bK, consumerK := newKey(t), newKey(t), newKey(t)
	aC, bC, consumer := n.client(t, aK), n.client(t, bK), n.client(t, consumerK)
	readone := addProgram(t, consumer, "node/testdata/readone", false)
	vars := map[string]string{"consumer": consumerK.Identity().ID().String(), "readone": readone}
	vars["owner"] = aK.Identity().ID().String()
	vars["aggregate"] = `@id("a-releases") permit (principal == Styx::Party::"` + vars["consumer"] + `", action == Styx::Action::"release", resource);`
	a := upload(t, aC, sealTo(t, aK, n.Cluster.Identity(), expand(readOnePolicy, vars), "text/csv", csvRows(4)))
	vars["owner"] = bK.Identity().ID().String()
	vars["aggregate"] = `@id("b-keeps-aggregates") forbid (principal, action == Styx::Action::"release", resource);`
	b := upload(t, bC, sealTo(t, bK, n.Cluster.Identity(), expand(readOnePolicy, vars), "text/csv", csvRows(7)))

	run := func(read string) *api.PadInfo {
		st := waitJob(t, consumer, &api.JobSpec{Program: readone, Inputs: map[string]string{"a": a.ID, "b": b.ID}, Purpose: "research",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Params: json.RawMessage(`{"input": "` + read + `"}`)})
		mustDone(t, st)
		info, err := consumer.Pad(ctx, st.Outputs["count"])
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	fromA, fromB := run("a"), run("b")
	for _, c := range []struct {
		got  *api.PadInfo
		want string
	}{{fromA, a.ID}, {fromB, b.ID}} {
		if len(c.got.Parents) != 1 || c.got.Parents[0] != c.want {
			t.Fatalf("derived Pad %s has parents %v, want only %s, the input the program read", c.got.ID, c.got.Parents, c.want)
		}
		lin, err := consumer.Lineage(ctx, c.got.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(lin.Nodes) != 2 {
			t.Fatalf("lineage of %s has %d nodes, want itself and %s", c.got.ID, len(lin.Nodes), c.want)
		}
	}
	// A's policy alone governs what was derived from A: B forbids releasing its aggregates,
	// and that does not reach the aggregate of A.
	if body := release(t, consumer, consumerK, fromA.ID); !strings.Contains(body, `"rows":4`) {
		t.Fatalf("aggregate of a: %s", body)
	}
	_, err := consumer.Release(ctx, fromB.ID)
	mustDeny(t, "release of the aggregate of b", err, b.ID, "b-keeps-aggregates")
	if hasReason(err, a.ID, "") {
		t.Fatalf("the release of what was derived from b alone was decided by a's policy too: %v", err)
	}
	// Revoking B leaves what was derived from A alone untouched.
	res, err := bC.Revoke(ctx, b.ID, "leaving")
	if err != nil {
		t.Fatal(err)
	}
	if contains(res.Shredded, fromA.ID) || !contains(res.Shredded, fromB.ID) {
		t.Fatalf("revoking b shredded %v, want %s and not %s", res.Shredded, fromB.ID, fromA.ID)
	}
	if body := release(t, consumer, consumerK, fromA.ID); !strings.Contains(body, `"rows":4`) {
		t.Fatalf("aggregate of a after b left: %s", body)
	}
}

// setClock is a trusted clock that tests set anywhere in time; nodes and clients share it, so
// signed request dates stay within the API's skew.
type setClock struct{ off atomic.Int64 }

func (c *setClock) Now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *setClock) set(d time.Duration) { c.off.Store(int64(d)) }

// clientAt is testNode.client with a client that dates its requests by clock.
func (tn *testNode) clientAt(t *testing.T, key *party.Key, clock *setClock) *api.Client {
	t.Helper()
	att, err := (&cluster.Client{Reference: tn.SelfReference()}).Attest(context.Background(), tn.URL())
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: tn.URL(), Key: key, TLS: att.TLSConfig(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// timeBoxedPolicy lets its owner train and count; models derived from the Pad answer the
// clinic's queries and aggregates go to the owner, under the Pad's own lifecycle (the derive
// rules set no lifecycle of their own, so they inherit it).
const timeBoxedPolicy = `version: 1
owner: ${owner}
rules: |
  @id("owner-uses")
  permit (principal == Styx::Party::"${owner}", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { ["${train}", "${count}"].contains(context.program) };
lifecycle: {${lifecycle}}
output:
  kinds: [model, aggregate]
derive:
  model:
    rules: |
      @id("clinic-query")
      permit (principal == Styx::Party::"${clinic}", action == Styx::Action::"query", resource)
      when { context.program == "${predict}" };
    output:
      kinds: [prediction]
  aggregate:
    rules: |
      @id("owner-release")
      permit (principal == Styx::Party::"${owner}", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

// TestLifecycleWindowsAtNode moves the node's trusted clock outside a Pad's window (before
// not_before, after expires) once a model and an aggregate were derived inside it: admission,
// release of the aggregate and queries on the model are then refused, each naming the Pad and
// the lifecycle field.
func TestLifecycleWindowsAtNode(t *testing.T) {
	ctx := context.Background()
	clock := &setClock{}
	n := serveConfig(t, Config{DataDir: t.TempDir(), Sandbox: sandboxForTests(), Logger: testLogger(t), Now: clock.Now})

	ownerK, clinicK := newKey(t), newKey(t)
	owner, clinic := n.clientAt(t, ownerK, clock), n.clientAt(t, clinicK, clock)
	train := addProgram(t, owner, "examples/programs/svmtrain", false)
	count := addProgram(t, owner, "examples/programs/rowcount", false)
	predict := addProgram(t, owner, "examples/programs/svmpredict", true)
	shares, test := wdbcShares(t, 1)
	var q bytes.Buffer
	sub, _ := test.Project(test.Features)
	sub.WriteCSV(&q, ml.LabelColumn)

	const day = 24 * time.Hour
	start := time.Now().UTC().Truncate(time.Second)
	for _, c := range []struct {
		field     string
		lifecycle string
		inside    time.Duration // a clock offset inside the window
		outside   time.Duration // one outside it
	}{
		{"lifecycle.not_before", "not_before: " + start.Add(10*day).Format(time.RFC3339), 11 * day, 0},
		{"lifecycle.expires", "expires: " + start.Add(day).Format(time.RFC3339), 0, 2 * day},
	} {
		t.Run(c.field, func(t *testing.T) {
			clock.set(c.inside)
			pol := expand(timeBoxedPolicy, map[string]string{"owner": ownerK.Identity().ID().String(), "clinic": clinicK.Identity().ID().String(),
				"train": train, "count": count, "predict": predict, "lifecycle": c.lifecycle})
			p := upload(t, owner, sealTo(t, ownerK, n.Cluster.Identity(), pol, "text/csv", shares[0]))
			countSpec := &api.JobSpec{Program: count, Inputs: map[string]string{"in": p.ID}, Purpose: "research",
				Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}}
			st := waitJob(t, owner, countSpec)
			mustDone(t, st)
			agg := st.Outputs["count"]
			st = waitJob(t, owner, &api.JobSpec{Program: train, Inputs: map[string]string{"in": p.ID}, Purpose: "research",
				Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: json.RawMessage(`{"epochs": 3, "seed": 1}`)})
			mustDone(t, st)
			model := st.Outputs["model"]
			// Inside the window everything is allowed.
			release(t, owner, ownerK, agg)
			if _, err := clinic.Query(ctx, model, predict, q.Bytes()); err != nil {
				t.Fatalf("query inside the window: %v", err)
			}

			clock.set(c.outside)
			_, err := owner.SubmitJob(ctx, countSpec)
			mustDeny(t, "admission", err, p.ID, c.field)
			ex, err := owner.ExplainJob(ctx, countSpec)
			if err != nil || ex.Allowed || !anyReason(ex, p.ID, c.field) {
				t.Fatalf("explain outside the window: %+v (%v)", ex, err)
			}
			_, err = owner.Release(ctx, agg)
			mustDeny(t, "release of the derived aggregate", err, p.ID, c.field)
			_, err = clinic.Query(ctx, model, predict, q.Bytes())
			mustDeny(t, "query on the derived model", err, p.ID, c.field)
		})
	}
}
