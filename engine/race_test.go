package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// countPolicy lets its owner use and derive with any program, and release aggregates.
const countPolicy = `version: VERSION
owner: OWNER
rules: |
  @id("owner")
  permit (principal == Styx::Party::"OWNER", action in [Styx::Action::"use", Styx::Action::"derive"], resource);
output:
  kinds: [aggregate, log]
LIFECYCLE
derive:
  aggregate:
    rules: |
      @id("owner-sees")
      permit (principal == Styx::Party::"OWNER", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

func ownerPolicy(owner *party.Key, version, lifecycle string) []byte {
	s := strings.ReplaceAll(countPolicy, "OWNER", owner.Identity().ID().String())
	s = strings.ReplaceAll(s, "VERSION", version)
	return []byte(strings.ReplaceAll(s, "LIFECYCLE", lifecycle))
}

// world is an engine with one owner, its Pad and the rowcount program.
type world struct {
	e     *Engine
	owner *party.Key
	pad   string
	prog  string
}

func newWorld(t testing.TB, e *Engine, lifecycle string) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{e: e, owner: newParty(t)}
	w.pad = w.upload(t, lifecycle)
	wasm, err := wasmbuild.Build(ctx, "examples/programs/rowcount", false)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := e.AddProgram(ctx, w.owner.Identity(), bytes.NewReader(wasm), int64(len(wasm)))
	if err != nil {
		t.Fatal(err)
	}
	w.prog = prog.SHA256
	return w
}

// upload seals a small table under the owner's policy with the given lifecycle line and stores it.
func (w *world) upload(t testing.TB, lifecycle string) string {
	t.Helper()
	return w.uploadWith(t, ownerPolicy(w.owner, "1", lifecycle))
}

func newParty(t testing.TB) *party.Key {
	t.Helper()
	k, err := party.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// run submits a rowcount job on the world's Pad and waits for its end.
func (w *world) run(t *testing.T) *api.JobStatus {
	t.Helper()
	ctx := context.Background()
	st, err := w.e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if !st.State.Final() {
		t.Fatalf("job %s is still %s", st.ID, st.State)
	}
	return st
}

// runHere submits the same job and runs it on the calling goroutine, without the engine's
// workers and sweeper: for tests that must not race with background work.
func (w *world) runHere(t *testing.T) *api.JobStatus {
	t.Helper()
	ctx := context.Background()
	st, err := w.e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.e.runJob(ctx, st.ID); err != nil {
		t.Fatal(err)
	}
	rec, err := w.e.jobRecord(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &rec.Status
}

func (w *world) revoke(t *testing.T, reason string) {
	t.Helper()
	if _, err := w.e.Revoke(context.Background(), w.owner.Identity(), api.SignRevocation(w.owner, w.pad, reason, w.e.now())); err != nil {
		t.Errorf("revoke: %v", err)
	}
}

// TestRevocationBeforeStart revokes the input after the job was admitted, as it starts: the
// decision taken while the guest boots denies it, so no Pad is opened (no key unwrapped) and the
// job is aborted with the revocation's reason.
func TestRevocationBeforeStart(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	var revoked, openedAfter atomic.Bool
	e.hook = func(s string) {
		switch {
		case s == "starting" && !revoked.Load():
			w.revoke(t, "withdrawn before the start")
			revoked.Store(true)
		case s == "open pad" && revoked.Load():
			openedAfter.Store(true)
		}
	}
	startIdle(t, e)
	st := w.run(t)
	if !revoked.Load() {
		t.Fatal("the job never started")
	}
	if st.State != api.JobAborted || st.Receipt != "" || len(st.Outputs) != 0 {
		t.Fatalf("job is %s (%s), receipt %q, outputs %v; want aborted without either", st.State, fmtAPIErr(st.Error), st.Receipt, st.Outputs)
	}
	if !strings.Contains(fmtAPIErr(st.Error), "withdrawn before the start") {
		t.Fatalf("abort reason %s does not give the revocation's", fmtAPIErr(st.Error))
	}
	if openedAfter.Load() {
		t.Fatal("a Pad was opened for a job its start decision denies")
	}
}

// TestPolicyUpdateWhileSealing updates the input's policy after the program ended: the outputs,
// sealed ahead on the policy the job started with, are sealed again on the new one, and the
// first sealing leaves no key or blob behind.
func TestPolicyUpdateWhileSealing(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	blobs := watchBlobs(e)
	e.hook = func(s string) {
		if s == "ran" {
			w.update(t, "2", "")
		}
	}
	startIdle(t, e)
	st := w.run(t)
	if st.State != api.JobDone {
		t.Fatalf("job is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	ch, err := e.loadChain(ctx, w.pad)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.padRecord(ctx, st.Outputs["count"])
	if err != nil {
		t.Fatal(err)
	}
	rc, err := e.blobs.Open(ctx, padBlob(out.ID))
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := pad.Inspect(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(hdr.Parents) != 1 || hex.EncodeToString(hdr.Parents[0].PolicyDigest[:]) != ch.policyDigest() {
		t.Fatalf("the output's parents are %+v; want %s under its updated policy %s", hdr.Parents, w.pad, ch.policyDigest())
	}
	if err := e.VerifyPad(ctx, out.ID); err != nil {
		t.Fatalf("the output does not open: %v", err)
	}
	if len(blobs.put()) != 2 {
		t.Fatalf("%d blobs put; want 2: the output sealed ahead, then again", len(blobs.put()))
	}
	assertNoStrayOutputs(t, e, blobs)
}

// TestRefusedOutputLeavesNothing runs a job whose output the input's policy refuses once the
// program has run (an aggregate of fewer rows than min_aggregation): the output was sealed
// ahead of that check, and neither its key nor its blob is left.
func TestRefusedOutputLeavesNothing(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "  min_aggregation: 1000000")
	blobs := watchBlobs(e)
	startIdle(t, e)
	st := w.run(t)
	if st.State == api.JobDone || len(st.Outputs) != 0 || !strings.Contains(fmtAPIErr(st.Error), "min_aggregation") {
		t.Fatalf("job is %s (%s), outputs %v; want refused for min_aggregation", st.State, fmtAPIErr(st.Error), st.Outputs)
	}
	if len(blobs.put()) == 0 {
		t.Fatal("no output was sealed ahead of the check: the test tests nothing")
	}
	assertNoStrayOutputs(t, e, blobs)
}

// putBlobs is the node's blob store, remembering the ids of the blobs put in it.
type putBlobs struct {
	store.Blobs
	mu  sync.Mutex
	ids []string
}

// watchBlobs makes e remember the blobs it puts from now on.
func watchBlobs(e *Engine) *putBlobs {
	b := &putBlobs{Blobs: e.blobs}
	e.blobs = b
	return b
}

func (b *putBlobs) Put(ctx context.Context, id string, r io.Reader) (store.BlobInfo, error) {
	b.mu.Lock()
	b.ids = append(b.ids, id)
	b.mu.Unlock()
	return b.Blobs.Put(ctx, id, r)
}

func (b *putBlobs) put() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.ids)
}

// assertNoStrayOutputs checks that every data key on e, and every blob put in blobs that is
// still there, belongs to a Pad record: nothing sealed and not kept is left behind.
func assertNoStrayOutputs(t *testing.T, e *Engine, blobs *putBlobs) {
	t.Helper()
	ctx := context.Background()
	recs, err := e.allPads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[padBlob(r.ID)] = true
	}
	keys, err := e.st.Keys(ctx, store.DataKeys, "")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !known[padBlob(k)] {
			t.Errorf("data key %s belongs to no Pad", k)
		}
	}
	for _, id := range blobs.put() {
		if _, err := blobs.Stat(ctx, id); err == nil && !known[id] && strings.HasPrefix(id, "pad-") {
			t.Errorf("blob %s belongs to no Pad", id)
		}
	}
}

// TestRevocationWhileSealing revokes the input at the two points a job's end can race with:
// after the program ended (the watchdog has stopped), and after the outputs were checked but
// before they are sealed (the revocation's cascade runs before the derived Pads exist). Either
// way the job is aborted, issues no receipt, and leaves no derived Pad with a key.
func TestRevocationWhileSealing(t *testing.T) {
	for _, stage := range []string{"ran", "seal"} {
		t.Run(stage, func(t *testing.T) {
			e := newTestEngine(t)
			w := newWorld(t, e, "")
			e.hook = func(s string) {
				if s == stage {
					w.revoke(t, "withdrawn at "+stage)
				}
			}
			startIdle(t, e)
			st := w.run(t)
			if st.State != api.JobAborted || st.Receipt != "" || len(st.Outputs) != 0 {
				t.Fatalf("job is %s (%s), receipt %q, outputs %v; want aborted without either", st.State, fmtAPIErr(st.Error), st.Receipt, st.Outputs)
			}
			if !strings.Contains(fmtAPIErr(st.Error), "withdrawn at "+stage) {
				t.Fatalf("abort reason %s does not give the revocation's", fmtAPIErr(st.Error))
			}
			assertOutputsDestroyed(t, e)
			assertNoReceipt(t, e)
		})
	}
}

func fmtAPIErr(e *api.Error) string {
	if e == nil {
		return "<nil>"
	}
	return e.Message + " " + strings.Join(e.Reasons, "; ")
}

// TestLostReservationRaceDenies loses the race for an input's last use between decision and
// reservation: the job is denied for the use limit, which is not exceeded; the other input,
// reserved at the same time, gives at most its one use.
func TestLostReservationRaceDenies(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {use: 1}}")
	other := w.upload(t, "")
	useOf := func(pad string) string { return counterKey(policy.CounterKey{Pad: pad, Action: policy.ActionUse}) }
	e.hook = func(stage string) {
		if stage == "reserve" { // another request takes the last use of input "a"
			if _, err := e.st.Reserve(ctx, useOf(w.pad), 1, 1); err != nil {
				t.Errorf("racing reservation: %v", err)
			}
		}
	}
	_, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"a": w.pad, "b": other},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "lifecycle.max_uses.use") || !strings.Contains(err.Error(), w.pad) {
		t.Fatalf("job that lost the race: %v", err)
	}
	if n, err := e.st.Counter(ctx, useOf(w.pad)); err != nil || n != 1 {
		t.Fatalf("input a: %d uses (%v), want its limit 1: never exceeded", n, err)
	}
	// Input b was reserved at the same time as a: its use stays taken (conservative), once.
	if n, err := e.st.Counter(ctx, useOf(other)); err != nil || n > 1 {
		t.Fatalf("input b of the denied job: %d uses taken (%v), want at most 1", n, err)
	}
}

// A limit on derive counts derived Pads: with max_uses {derive: 1}, one job with one output
// is admitted and the next is denied, naming the rule.
func TestDeriveLimitCountsDerivedPads(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {derive: 1}}")
	if st := w.runHere(t); st.State != api.JobDone {
		t.Fatalf("first job: %s (%s)", st.State, fmtAPIErr(st.Error))
	}
	_, err := e.SubmitJob(context.Background(), w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "lifecycle.max_uses.derive") {
		t.Fatalf("second job past a derive limit of 1: %v", err)
	}
}

// A use limit of K admits and runs K jobs: the re-checks of a running job decide with the
// counters as they were before its own reservation (a job admitted for the last use used to be
// aborted by that very use), and the job after the K-th is denied at admission.
func TestUseLimitRunsExactlyThatManyJobs(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {use: 2}, max_uses_per_party: {use: 2}}")
	for i := range 2 {
		if st := w.runHere(t); st.State != api.JobDone {
			t.Fatalf("job %d of 2: %s (%s)", i+1, st.State, fmtAPIErr(st.Error))
		}
	}
	_, err := e.SubmitJob(context.Background(), w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "lifecycle.max_uses") {
		t.Fatalf("third job past a use limit of 2: %v", err)
	}
}

// A job naming a program the node does not have is refused as such, and takes no use of its
// inputs (the program check runs alongside the inputs' evaluation, before any reservation).
func TestMissingProgramTakesNoUse(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {use: 5}}")
	missing := strings.Repeat("ab", 32)
	_, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: missing, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "no program "+missing) {
		t.Fatalf("job with a missing program: %v", err)
	}
	if n, err := e.st.Counter(ctx, counterKey(policy.CounterKey{Pad: w.pad, Action: policy.ActionUse})); err != nil || n != 0 {
		t.Fatalf("the refused job took %d uses (%v)", n, err)
	}
}

// TestAbortDuringStartDecision: the watchdog aborts a job (its input was revoked) while the
// job's start decision is still reading; that decision then fails on the cancelled context.
// The job ends aborted, with the revocation's reason, not failed with the decision's error.
func TestAbortDuringStartDecision(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	abortAt(t, e, w, "start decision", "withdrawn during the start decision")
	startIdle(t, e)
	st := w.run(t)
	if st.State != api.JobAborted || !strings.Contains(fmtAPIErr(st.Error), "withdrawn during the start decision") {
		t.Fatalf("job is %s (%s), want aborted for the revocation", st.State, fmtAPIErr(st.Error))
	}
}

// TestEarlySealDroppedOnAbort: the program closed its output, which was sealed and its key and
// blob written at once, and the job is then aborted (its input revoked, the watchdog's
// re-check) before the output pipeline takes the output. The job ends aborted, no derived Pad
// exists, and the output's key and blob are gone.
func TestEarlySealDroppedOnAbort(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	blobs := watchBlobs(e)
	sealed := abortAt(t, e, w, "sealing early", "withdrawn after the output was closed")
	startIdle(t, e)
	st := w.run(t)
	if !sealed.Load() {
		t.Fatal("the output was not sealed when the program closed it")
	}
	if st.State != api.JobAborted || len(st.Outputs) != 0 || !strings.Contains(fmtAPIErr(st.Error), "withdrawn after the output was closed") {
		t.Fatalf("job is %s (%s), outputs %v; want aborted for the revocation", st.State, fmtAPIErr(st.Error), st.Outputs)
	}
	if n := assertOutputsDestroyed(t, e); n != 0 {
		t.Fatalf("%d derived Pad records for a job aborted before its output pipeline", n)
	}
	if len(blobs.put()) == 0 {
		t.Fatal("no blob was written for the output sealed early: the test shows nothing")
	}
	assertNoStrayOutputs(t, e, blobs)
	assertNoReceipt(t, e)
}

// abortAt makes the watchdog abort w's job at stage: there, the hook revokes w's Pad for reason
// and waits until a re-check (every millisecond) has denied the job. It returns whether stage
// was reached.
func abortAt(t *testing.T, e *Engine, w *world, stage, reason string) *atomic.Bool {
	t.Helper()
	e.cfg.Recheck = time.Millisecond
	denied := make(chan struct{})
	var once sync.Once
	var reached atomic.Bool
	e.hook = func(s string) {
		switch s {
		case stage:
			if reached.Swap(true) {
				return
			}
			w.revoke(t, reason)
			select {
			case <-denied:
			case <-time.After(10 * time.Second):
				t.Error("the watchdog did not abort the job")
			}
		case "re-check denied":
			once.Do(func() { close(denied) })
		}
	}
	return &reached
}

// slowFailingBlobs fails, after a while, every Put of a Pad blob: a derived Pad's blob that
// cannot be stored, written while the Pad's record is.
type slowFailingBlobs struct{ store.Blobs }

func (b slowFailingBlobs) Put(ctx context.Context, id string, r io.Reader) (store.BlobInfo, error) {
	if strings.HasPrefix(id, "pad-") {
		time.Sleep(50 * time.Millisecond) // the record is written meanwhile
		return store.BlobInfo{}, errors.New("no space left on device")
	}
	return b.Blobs.Put(ctx, id, r)
}

// TestOutputBlobWriteFails: the derived Pad's record is written while its blob is, and the blob
// write fails. The job fails, issues no receipt, and the record it made is marked deleted,
// its key destroyed.
func TestOutputBlobWriteFails(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	e.blobs = slowFailingBlobs{e.blobs}
	startIdle(t, e)
	st := w.run(t)
	if st.State != api.JobFailed || st.Receipt != "" || len(st.Outputs) != 0 {
		t.Fatalf("job is %s (%s), receipt %q, outputs %v; want failed without either", st.State, fmtAPIErr(st.Error), st.Receipt, st.Outputs)
	}
	if assertOutputsDestroyed(t, e) == 0 {
		t.Fatal("no derived Pad record was written while the blob was: the test shows nothing")
	}
	assertNoReceipt(t, e)
}

// assertOutputsDestroyed checks that every derived Pad on e is marked deleted, its key
// destroyed, and returns how many there are.
func assertOutputsDestroyed(t *testing.T, e *Engine) (derived int) {
	t.Helper()
	ctx := context.Background()
	recs, err := e.allPads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if !r.Derived {
			continue
		}
		derived++
		if r.Deleted.IsZero() {
			t.Errorf("derived Pad %s of a job that did not finish is live", r.ID)
		}
		if _, err := e.dataKey(ctx, r.ID); !errors.Is(err, ErrShredded) {
			t.Errorf("key of derived Pad %s: %v, want shredded", r.ID, err)
		}
	}
	return derived
}

// assertNoReceipt checks that e's log holds no receipt.
func assertNoReceipt(t *testing.T, e *Engine) {
	t.Helper()
	for i := range e.audit.Size() {
		en, err := e.audit.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		if en.Event.Receipt != nil {
			t.Fatalf("a receipt was logged at %d: %+v", i, en.Event)
		}
	}
}
