package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/engine"
	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/store"
)

// lifecyclePolicy lets the members use and derive with the approved programs; models may be
// fine-tuned by members and queried by the clinic at most three times; aggregates may be
// released to members. ${lifecycle} is the Pad's own lifecycle line (or nothing).
const lifecyclePolicy = `version: ${version}
owner: ${owner}
groups:
  members: [${h1}, ${h2}]
  clinics: [${clinic}]
rules: |
  @id("members")
  permit (principal in Styx::Group::"members", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { ["${train}", "${slow}", "${count}"].contains(context.program) };
output:
  kinds: [model, aggregate, log]
${lifecycle}
derive:
  model:
    rules: |
      @id("finetune")
      permit (principal in Styx::Group::"members", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
      when { ["${train}", "${count}"].contains(context.program) };
      @id("clinic-query")
      permit (principal in Styx::Group::"clinics", action == Styx::Action::"query", resource)
      when { context.program == "${predict}" };
    output:
      kinds: [model, prediction, aggregate, log]
    lifecycle:
      max_uses_per_party: {query: 3}
  aggregate:
    rules: |
      @id("members-see-aggregates")
      permit (principal in Styx::Group::"members", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

// testClock is the node's trusted clock in these tests: real time plus an offset that only
// grows. The API checks request dates against it too, so tests keep the offset well inside
// the API's two-minute skew.
type testClock struct{ off, calls atomic.Int64 }

func (c *testClock) Now() time.Time {
	c.calls.Add(1)
	return time.Now().Add(time.Duration(c.off.Load()))
}

// awaitCalls waits until the clock has been read n more times: a running job's every input read
// reads it, so this is how a test knows a job is past admission and reading.
func (c *testClock) awaitCalls(n int64) {
	for start := c.calls.Load(); c.calls.Load()-start < n; {
		time.Sleep(time.Millisecond)
	}
}
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// startNodeWith is startNode with the test's clock and a fast re-check of running jobs.
func startNodeWith(t *testing.T, dir string, clock *testClock) *testNode {
	return startNodeRecheck(t, dir, clock, 5*time.Millisecond)
}

func startNodeRecheck(t *testing.T, dir string, clock *testClock, recheck time.Duration) *testNode {
	t.Helper()
	return serveConfig(t, Config{DataDir: dir, Sandbox: sandboxForTests(), Logger: testLogger(t),
		Now: clock.Now, Recheck: recheck, Workers: 2})
}

// lifecycleWorld is a node with its parties, programs and policy variables.
type lifecycleWorld struct {
	n                      *testNode
	dir                    string
	clock                  *testClock
	h1k, h2k, clinicK      *party.Key
	h1, h2, clinic         *api.Client
	vars                   map[string]string
	train, slow, count, pr string
}

func newLifecycleWorld(t *testing.T) *lifecycleWorld {
	return newLifecycleWorldRecheck(t, 5*time.Millisecond)
}

func newLifecycleWorldRecheck(t *testing.T, recheck time.Duration) *lifecycleWorld {
	w := &lifecycleWorld{dir: t.TempDir(), clock: &testClock{}}
	w.n = startNodeRecheck(t, w.dir, w.clock, recheck)
	w.h1k, w.h2k, w.clinicK = newKey(t), newKey(t), newKey(t)
	w.connect(t)
	w.train = programHash(t, "examples/programs/svmtrain", false)
	w.slow = programHash(t, "examples/programs/slowcount", false)
	w.count = programHash(t, "examples/programs/rowcount", false)
	w.pr = programHash(t, "examples/programs/svmpredict", true)
	w.vars = map[string]string{"h1": w.h1k.Identity().ID().String(), "h2": w.h2k.Identity().ID().String(),
		"clinic": w.clinicK.Identity().ID().String(), "train": w.train, "slow": w.slow, "count": w.count, "predict": w.pr}
	return w
}

// programHash builds a program and returns the digest policies name it by; add uploads it.
// Tests upload only the programs they run: compiling one is slow under the race detector.
func programHash(t *testing.T, pkg string, reactor bool) string {
	t.Helper()
	wasm, err := wasmbuild.Build(context.Background(), pkg, reactor)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// add uploads the named programs ("train", "slow", "count", "predict").
func (w *lifecycleWorld) add(t *testing.T, names ...string) {
	t.Helper()
	pkgs := map[string]string{"train": "svmtrain", "slow": "slowcount", "count": "rowcount", "predict": "svmpredict"}
	for _, name := range names {
		got := addProgram(t, w.h1, "examples/programs/"+pkgs[name], name == "predict")
		if got != w.vars[name] {
			t.Fatalf("program %s: node says %s, built %s", name, got, w.vars[name])
		}
	}
}

func (w *lifecycleWorld) connect(t *testing.T) {
	w.h1, w.h2, w.clinic = w.n.client(t, w.h1k), w.n.client(t, w.h2k), w.n.client(t, w.clinicK)
}

// restart stops the node and opens a new one on the same data directory.
func (w *lifecycleWorld) restart(t *testing.T) {
	t.Helper()
	w.n.stop()
	w.n = startNodeWith(t, w.dir, w.clock)
	w.connect(t)
}

// policy renders the lifecycle policy for owner with the given version and lifecycle line.
func (w *lifecycleWorld) policy(owner *party.Key, version int, lifecycle string) string {
	v := map[string]string{"owner": owner.Identity().ID().String(), "version": fmt.Sprint(version), "lifecycle": lifecycle}
	for k, x := range w.vars {
		v[k] = x
	}
	return expand(lifecyclePolicy, v)
}

func (w *lifecycleWorld) upload(t *testing.T, owner *party.Key, c *api.Client, lifecycle string, data []byte) *api.PadInfo {
	t.Helper()
	return upload(t, c, sealTo(t, owner, w.n.Cluster.Identity(), w.policy(owner, 1, lifecycle), "text/csv", data))
}

// startSlow submits a slowcount job that would run for minutes and waits until it runs.
func (w *lifecycleWorld) startSlow(t *testing.T, c *api.Client, input string) string {
	t.Helper()
	ctx := context.Background()
	st, err := c.SubmitJob(ctx, &api.JobSpec{Program: w.slow, Inputs: map[string]string{"in": input}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Params: json.RawMessage(`{"passes": 100000000}`)})
	if err != nil {
		t.Fatalf("submit slow job: %v", err)
	}
	for st.State == api.JobQueued {
		time.Sleep(5 * time.Millisecond)
		if st, err = c.Job(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st.State != api.JobRunning {
		t.Fatalf("slow job is %s before anything changed: %v", st.State, fmtErr(st.Error))
	}
	return st.ID
}

func (w *lifecycleWorld) wait(t *testing.T, c *api.Client, id string) *api.JobStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := c.WaitJob(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// mustAbort checks that job id was aborted for a reason containing why, sealed no output, and
// that the input's owner finds the abort and its reason in the audit log.
func (w *lifecycleWorld) mustAbort(t *testing.T, st *api.JobStatus, owner *api.Client, input, why string) {
	t.Helper()
	if st.State != api.JobAborted {
		t.Fatalf("job %s is %s (%s), want aborted", st.ID, st.State, fmtErr(st.Error))
	}
	if len(st.Outputs) != 0 || st.Receipt != "" {
		t.Fatalf("aborted job has outputs %v, receipt %q", st.Outputs, st.Receipt)
	}
	if !strings.Contains(fmtErr(st.Error), why) {
		t.Fatalf("abort reason %q does not say %q", fmtErr(st.Error), why)
	}
	if kids := children(t, w.h1, input); len(kids) != 0 {
		t.Fatalf("an aborted job left derived Pads %v", kids)
	}
	for _, ev := range auditEvents(t, owner, input) {
		if ev.Kind == audit.KindJobAbort && ev.Job == st.ID && strings.Contains(strings.Join(ev.Reasons, "\n"), why) {
			return
		}
	}
	t.Fatalf("the owner of %s finds no abort of job %s saying %q in the audit log", input, st.ID, why)
}

// children lists the Pads on the node whose parents include id.
func children(t *testing.T, c *api.Client, id string) []string {
	t.Helper()
	var out []string
	req := &api.ListPadsRequest{}
	for {
		page, err := c.ListPads(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Pads {
			if contains(p.Parents, id) {
				out = append(out, p.ID)
			}
		}
		if page.Next == "" {
			return out
		}
		req.After = page.Next
	}
}

// auditEvents returns every event the caller may see about pad (and its descendants).
func auditEvents(t *testing.T, c *api.Client, pad string) []*audit.Event {
	t.Helper()
	var out []*audit.Event
	q := &api.AuditQuery{Pad: pad}
	for {
		page, err := c.Audit(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			ev, err := audit.ParseRecord(e.Record)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		if page.Next == 0 || page.Next <= q.From {
			return out
		}
		q.From = page.Next
	}
}

func csvRows(n int) []byte {
	var b bytes.Buffer
	b.WriteString("a,b\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,%d\n", i, i*i)
	}
	return b.Bytes()
}

// TestMidJobExpiryAborts expires an input while a job reads it: once with the watchdog
// re-checking every few milliseconds, once with only the per-read check (the watchdog's
// interval an hour), which must abort the job on its own.
func TestMidJobExpiryAborts(t *testing.T) {
	for _, tc := range []struct {
		name    string
		recheck time.Duration
		why     string
	}{{"watchdog", 5 * time.Millisecond, "expired"}, {"per-read check", time.Hour, "expired at"}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newLifecycleWorldRecheck(t, tc.recheck)
			w.add(t, "slow")
			expires := w.clock.Now().Add(30 * time.Second).UTC().Truncate(time.Second).Format(time.RFC3339)
			p := w.upload(t, w.h1k, w.h1, "lifecycle: {expires: "+expires+"}", csvRows(20))
			id := w.startSlow(t, w.h1, p.ID)
			w.clock.awaitCalls(1000) // the program is reading
			w.clock.advance(45 * time.Second)
			st := w.wait(t, w.h1, id)
			w.mustAbort(t, st, w.h1, p.ID, tc.why)
			if tc.recheck == time.Hour && !strings.Contains(fmtErr(st.Error), "during the job") {
				t.Fatalf("not aborted by the per-read check: %s", fmtErr(st.Error))
			}
		})
	}
}

func TestMidJobRevocationAborts(t *testing.T) {
	w := newLifecycleWorld(t)
	w.add(t, "slow")
	p := w.upload(t, w.h1k, w.h1, "", csvRows(20))
	id := w.startSlow(t, w.h2, p.ID)
	if _, err := w.h1.Revoke(context.Background(), p.ID, "withdrawn mid-job"); err != nil {
		t.Fatal(err)
	}
	st := w.wait(t, w.h2, id)
	w.mustAbort(t, st, w.h1, p.ID, "revoked")
	// The submitter learns why as well.
	if !strings.Contains(fmtErr(st.Error), p.ID) || !strings.Contains(fmtErr(st.Error), "withdrawn mid-job") {
		t.Fatalf("abort reason %s does not name the revoked Pad and its reason", fmtErr(st.Error))
	}
}

// TestRacingConsumers has many parties' goroutines submit jobs at once on a Pad allowing K
// uses: exactly K are admitted, every other one is denied by the use limit, and the K admitted
// run to the end (a job admitted for the last use is not aborted by that use).
func TestRacingConsumers(t *testing.T) {
	const n, k = 32, 3
	w := newLifecycleWorld(t)
	w.add(t, "count")
	p := w.upload(t, w.h1k, w.h1, fmt.Sprintf("lifecycle: {max_uses: {use: %d}}", k), csvRows(5))
	var admitted, denied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	clients := []*api.Client{w.h1, w.h2}
	var mu sync.Mutex
	jobs := map[string]*api.Client{}
	for i := range n {
		wg.Go(func() {
			st, err := clients[i%2].SubmitJob(context.Background(), &api.JobSpec{Program: w.count, Inputs: map[string]string{"in": p.ID},
				Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
			switch {
			case err == nil:
				mu.Lock()
				jobs[st.ID] = clients[i%2]
				mu.Unlock()
				admitted.Add(1)
			case errors.Is(err, api.ErrDenied) && strings.Contains(err.Error(), "max_uses"):
				denied.Add(1)
			default:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("submit: %v", err)
	}
	if admitted.Load() != k || denied.Load() != n-k {
		t.Fatalf("%d admitted and %d denied of %d, want exactly %d admitted", admitted.Load(), denied.Load(), n, k)
	}
	info, err := w.h1.Pad(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Uses != k {
		t.Fatalf("Pad records %d uses, want %d", info.Uses, k)
	}
	for id, c := range jobs {
		st, err := c.WaitJob(context.Background(), id)
		if err != nil || st.State != api.JobDone {
			t.Fatalf("admitted job %s: %v (%v)", id, st, err)
		}
	}
}

// TestRetentionDeletion deletes a Pad and its derived aggregate once their retention passes:
// blobs and key gone, the deletion in the log, lineage saying deleted.
func TestRetentionDeletion(t *testing.T) {
	ctx := context.Background()
	w := newLifecycleWorld(t)
	w.add(t, "count")
	p := w.upload(t, w.h1k, w.h1, "lifecycle: {retention: 20s}", csvRows(5))
	keep := w.upload(t, w.h2k, w.h2, "", csvRows(6))
	st := waitJob(t, w.h1, &api.JobSpec{Program: w.count, Inputs: map[string]string{"in": p.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	mustDone(t, st)
	agg := st.Outputs["count"]
	if got, err := w.n.Engine.SweepRetention(ctx); err != nil || len(got) != 0 {
		t.Fatalf("sweep before the retention passed deleted %v (%v)", got, err)
	}
	w.clock.advance(30 * time.Second)
	got, err := w.n.Engine.SweepRetention(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !contains(got, p.ID) || !contains(got, agg) {
		t.Fatalf("sweep deleted %v, want %s and its aggregate %s", got, p.ID, agg)
	}
	for _, id := range []string{p.ID, agg} {
		if _, err := w.n.Blobs.Stat(ctx, "pad-"+id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("blob of deleted %s: %v", id, err)
		}
		if err := w.n.Engine.VerifyPad(ctx, id); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("node opens deleted Pad %s: %v", id, err)
		}
	}
	if revs, err := w.n.Store.History(ctx, store.DataKeys, agg); err != nil || len(revs) != 0 {
		t.Fatalf("data key of the deleted aggregate: %d revisions left (%v)", len(revs), err)
	}
	if err := w.n.Engine.VerifyPad(ctx, keep.ID); err != nil {
		t.Fatalf("a Pad without retention was touched: %v", err)
	}
	deletions := map[string]bool{}
	for _, ev := range auditEvents(t, w.h1, p.ID) {
		if ev.Kind == audit.KindDelete && strings.Contains(strings.Join(ev.Reasons, " "), "retention") {
			for _, id := range ev.Pads {
				deletions[id] = true
			}
		}
	}
	if !deletions[p.ID] || !deletions[agg] {
		t.Fatalf("owner's audit log shows deletions of %v, want %s and %s", deletions, p.ID, agg)
	}
	lin, err := w.h1.Lineage(ctx, agg)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range lin.Nodes {
		if nd.State != api.PadDeleted {
			t.Fatalf("lineage shows %s as %s, want deleted", nd.Pad, nd.State)
		}
	}
	_, err = w.h1.SubmitJob(ctx, &api.JobSpec{Program: w.count, Inputs: map[string]string{"in": p.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if err == nil || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("job on a deleted Pad: %v", err)
	}
	if again, err := w.n.Engine.SweepRetention(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second sweep deleted %v (%v)", again, err)
	}
}

// TestRestartAndCascade runs one consortium across node restarts: counters and policy
// versions survive, the log stays consistent with heads seen before, a newcomer fine-tunes a
// model, and revoking the first Pad reaches three generations and shreds their keys.
func TestRestartAndCascade(t *testing.T) {
	ctx := context.Background()
	w := newLifecycleWorld(t)
	w.add(t, "train", "count", "predict")
	shares, test := wdbcShares(t, 2)
	p1 := w.upload(t, w.h1k, w.h1, "lifecycle: {max_uses: {use: 3}}", shares[0])
	countJob := func(c *api.Client) error {
		_, err := c.SubmitJob(ctx, &api.JobSpec{Program: w.count, Inputs: map[string]string{"in": p1.ID}, Purpose: "research",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
		return err
	}
	// Generation one: a model trained on p1 (use 1 of 3).
	st := waitJob(t, w.h1, &api.JobSpec{Program: w.train, Inputs: map[string]string{"a": p1.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: json.RawMessage(`{"epochs": 10, "seed": 1}`)})
	mustDone(t, st)
	model := st.Outputs["model"]
	var q bytes.Buffer
	sub, _ := test.Project(test.Features)
	sub.WriteCSV(&q, ml.LabelColumn)
	for i := range 2 {
		if _, err := w.clinic.Query(ctx, model, w.pr, q.Bytes()); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
	}
	if err := countJob(w.h1); err != nil { // use 2 of 3
		t.Fatal(err)
	}
	v2 := w.policy(w.h1k, 2, "lifecycle: {max_uses: {use: 3}}")
	if _, err := w.h1.UpdatePolicy(ctx, p1.ID, []byte(v2)); err != nil {
		t.Fatal(err)
	}
	headFile := filepath.Join(t.TempDir(), "head")
	pub := w.n.Cluster.Identity().SigningKey()
	before := advanceHead(t, w.h1, headFile, pub)
	oldNote := before.Note

	w.restart(t)

	t.Run("counters survive a restart", func(t *testing.T) {
		info, err := w.h1.Pad(ctx, p1.ID)
		if err != nil || info.Uses != 2 {
			t.Fatalf("after restart the Pad records %d uses (%v), want 2", info.Uses, err)
		}
		if err := countJob(w.h2); err != nil {
			t.Fatalf("third use: %v", err)
		}
		if err := countJob(w.h1); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "max_uses") {
			t.Fatalf("fourth use after restart: %v", err)
		}
		if _, err := w.clinic.Query(ctx, model, w.pr, q.Bytes()); err != nil {
			t.Fatalf("third query: %v", err)
		}
		if _, err := w.clinic.Query(ctx, model, w.pr, q.Bytes()); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "max_uses_per_party") {
			t.Fatalf("fourth query after restart: %v", err)
		}
	})
	t.Run("policy rollback refused after a restart", func(t *testing.T) {
		for _, v := range []int{1, 2} {
			_, err := w.h1.UpdatePolicy(ctx, p1.ID, []byte(w.policy(w.h1k, v, "lifecycle: {max_uses: {use: 3}}")))
			if !errors.Is(err, api.ErrConflict) || !strings.Contains(err.Error(), "rollback") {
				t.Fatalf("version %d after restart: %v", v, err)
			}
		}
		info, err := w.h1.Pad(ctx, p1.ID)
		if err != nil || info.PolicyVersion != 2 {
			t.Fatalf("policy version %d (%v), want 2", info.PolicyVersion, err)
		}
	})

	// Joining: h2 fine-tunes h1's model with its own Pad; then an aggregate of the new model.
	p2 := w.upload(t, w.h2k, w.h2, "", shares[1])
	st = waitJob(t, w.h2, &api.JobSpec{Program: w.train, Inputs: map[string]string{"model": model, "b": p2.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: json.RawMessage(`{"epochs": 3, "seed": 2}`)})
	mustDone(t, st)
	model2 := st.Outputs["model"]
	st = waitJob(t, w.h2, &api.JobSpec{Program: w.count, Inputs: map[string]string{"m": model2}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	mustDone(t, st)
	agg := st.Outputs["count"]

	w.restart(t)

	t.Run("log consistent across restarts", func(t *testing.T) {
		after := advanceHead(t, w.h1, headFile, pub)
		if after.Size <= before.Size {
			t.Fatalf("head did not grow: %d then %d", before.Size, after.Size)
		}
		// A rolled-back head (the one seen before) is refused now that a newer one was seen.
		if _, err := audit.AdvanceHead(headFile, pub, oldNote, nil); err == nil {
			t.Fatal("a rolled-back head was accepted")
		}
		// A forged head (valid text, wrong signature) is refused.
		forged := bytes.Replace(after.Note, []byte(fmt.Sprint(after.Size)), []byte(fmt.Sprint(after.Size+1)), 1)
		if _, err := audit.AdvanceHead(headFile, pub, forged, nil); err == nil {
			t.Fatal("a forged head was accepted")
		}
		last, err := audit.LoadLastHead(headFile, pub)
		if err != nil || last.Size != after.Size {
			t.Fatalf("refusals changed the saved head: %v", err)
		}
	})

	t.Run("revocation cascades through three generations", func(t *testing.T) {
		lin, err := w.h2.Lineage(ctx, agg)
		if err != nil || len(lin.Nodes) != 5 {
			t.Fatalf("lineage of the aggregate: %+v (%v), want p1, p2, two models, aggregate", lin, err)
		}
		for _, id := range []string{model, model2, agg} {
			if err := w.n.Engine.VerifyPad(ctx, id); err != nil {
				t.Fatalf("before revocation, %s: %v", id, err)
			}
		}
		res, err := w.h1.Revoke(ctx, p1.ID, "leaving the consortium")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{model, model2, agg} {
			if !contains(res.Shredded, id) {
				t.Fatalf("revocation shredded %v, not %s", res.Shredded, id)
			}
			if err := w.n.Engine.VerifyPad(ctx, id); !errors.Is(err, engine.ErrShredded) {
				t.Fatalf("the node still opens %s: %v", id, err)
			}
			if revs, err := w.n.Store.History(ctx, store.DataKeys, id); err != nil || len(revs) != 0 {
				t.Fatalf("data key of %s: %d revisions left (%v)", id, len(revs), err)
			}
			info, err := w.h2.Pad(ctx, id)
			if err != nil || info.State != api.PadRevoked {
				t.Fatalf("state of %s: %+v (%v)", id, info, err)
			}
		}
		if contains(res.Shredded, p2.ID) {
			t.Fatal("the newcomer's own Pad was shredded")
		}
		if err := w.n.Engine.VerifyPad(ctx, p2.ID); err != nil {
			t.Fatalf("the newcomer's Pad: %v", err)
		}
		if _, err := w.h2.Release(ctx, agg); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), p1.ID) {
			t.Fatalf("release of a revoked descendant: %v", err)
		}
		// Retraining without the leaver is a new job on the newcomer's data alone.
		st := waitJob(t, w.h2, &api.JobSpec{Program: w.train, Inputs: map[string]string{"b": p2.ID}, Purpose: "research",
			Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: json.RawMessage(`{"epochs": 3, "seed": 3}`)})
		mustDone(t, st)
	})
}

// advanceHead fetches the node's head with a consistency proof from the head saved in path and
// advances path to it, as styx audit --verify does.
func advanceHead(t *testing.T, c *api.Client, path string, pub []byte) *audit.SignedHead {
	t.Helper()
	last, err := audit.LoadLastHead(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	var old uint64
	if last != nil {
		old = uint64(last.Size)
	}
	th, err := c.AuditHead(context.Background(), old)
	if err != nil {
		t.Fatal(err)
	}
	proof := make(tlog.TreeProof, len(th.Proof))
	for i, h := range th.Proof {
		proof[i] = tlog.Hash(h)
	}
	sh, err := audit.AdvanceHead(path, pub, th.Signed, proof)
	if err != nil {
		t.Fatalf("head %d does not extend the last one seen: %v", th.Size, err)
	}
	return sh
}

// TestMidJobPolicyUpdateAborts installs a new policy version that no longer allows the running
// job's program: the watchdog aborts it under the new version's reasons.
func TestMidJobPolicyUpdateAborts(t *testing.T) {
	w := newLifecycleWorld(t)
	w.add(t, "slow")
	p := w.upload(t, w.h1k, w.h1, "", csvRows(20))
	id := w.startSlow(t, w.h2, p.ID)
	v2 := strings.Replace(w.policy(w.h1k, 2, ""), `"`+w.slow+`", `, "", 1)
	if v2 == w.policy(w.h1k, 2, "") {
		t.Fatal("the slow program is not in the policy")
	}
	if _, err := w.h1.UpdatePolicy(context.Background(), p.ID, []byte(v2)); err != nil {
		t.Fatal(err)
	}
	st := w.wait(t, w.h2, id)
	w.mustAbort(t, st, w.h1, p.ID, "deny pad "+p.ID+" rules: no rule permits use")
}
