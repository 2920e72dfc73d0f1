package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/sandbox"
	"github.com/styx-tee/styx/store"
	"github.com/styx-tee/styx/tee"
)

type rawSigner struct{ k *party.Key }

func (s rawSigner) Sign(msg []byte) ([]byte, error) { return s.k.SignRaw(msg) }

// newTestEngine is an engine on a real embedded store, blob directory, sandbox and audit log.
func newTestEngine(t testing.TB) *Engine {
	t.Helper()
	ck, err := party.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e, closeAll := openTestEngine(t, t.TempDir(), ck)
	t.Cleanup(closeAll)
	return e
}

// compiled is the machine code the tests' sandboxes compiled, shared between them as a
// long-running process shares it between runtimes (sandbox.Cache): under -race, which
// instruments wazero's compiler too, compiling the same module for every test was most of the
// package's run time. Each sandbox still has its own table of programs (Runtime.Cached).
var compiled = sandbox.NewCache()

// openTestEngine opens an engine on the state in dir (created if new) under cluster key ck.
// closeAll closes what the engine runs on, as a node stopping does; opening the same dir again
// is a restart.
func openTestEngine(t testing.TB, dir string, ck *party.Key) (e *Engine, closeAll func()) {
	t.Helper()
	ctx := context.Background()
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		closers = nil
	}
	defer func() {
		if t.Failed() {
			closeAll()
		}
	}()
	key, err := store.NewKey(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Config{Dir: filepath.Join(dir, "store"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, func() { st.Close() })
	blobs, err := store.OpenDisk(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(ctx, sandbox.Config{Cache: compiled})
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, func() { sb.Close(context.Background()) })
	alog, err := audit.Open(filepath.Join(dir, "audit"), audit.Options{Origin: "styx.test", Signer: rawSigner{ck}, PublicKey: ck.Identity().SigningKey()})
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, func() { alog.Close() })
	e, err = New(Config{Cluster: ck, StateKey: bytes.Repeat([]byte{2}, 32), Claims: tee.Claims{Type: tee.Sim, Simulated: true},
		Store: st, Blobs: blobs, Sandbox: sb, Audit: alog})
	if err != nil {
		t.Fatal(err)
	}
	closers = append(closers, func() { e.Close() })
	return e, closeAll
}

// newRestartableWorld opens an engine on a fresh directory and makes a world in it. restart
// closes that engine and opens another on the same state, as a node restarting does, and points
// w at it; the last one is closed when the test ends.
func newRestartableWorld(t *testing.T) (w *world, restart func()) {
	t.Helper()
	dir := t.TempDir()
	ck, err := party.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e, closeAll := openTestEngine(t, dir, ck)
	t.Cleanup(func() { closeAll() })
	w = newWorld(t, e, "")
	return w, func() {
		t.Helper()
		closeAll()
		w.e, closeAll = openTestEngine(t, dir, ck)
	}
}

// putOutput stores what sealing an output of job leaves behind: key, blob and record.
func putOutput(t *testing.T, e *Engine, id, job string) {
	t.Helper()
	ctx := context.Background()
	if err := e.putDataKey(ctx, id, pad.NewDataKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.blobs.Put(ctx, padBlob(id), strings.NewReader("sealed bytes")); err != nil {
		t.Fatal(err)
	}
	if err := e.createJSON(ctx, store.Pads, id, &padRecord{ID: id, Derived: true, Job: job, Kind: "aggregate"}); err != nil {
		t.Fatal(err)
	}
}

// A job found running when its message comes again (its node died) is failed, and whatever
// outputs it had begun sealing are destroyed; other jobs' outputs are untouched.
func TestInterruptedJobFailsAndLosesItsOutputs(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	caller, err := party.Generate()
	if err != nil {
		t.Fatal(err)
	}
	job, other := newJobID(), newJobID()
	if err := e.createJSON(ctx, store.JobRecords, job, &jobRecord{Caller: caller.Identity().String(),
		Status: api.JobStatus{ID: job, State: api.JobRunning, Submitter: caller.Identity().ID().String()}}); err != nil {
		t.Fatal(err)
	}
	putOutput(t, e, "half-a", job)
	putOutput(t, e, "done-b", other)

	if err := e.runJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	rec, err := e.jobRecord(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status.State != api.JobFailed || !strings.Contains(rec.Status.Error.Message, "still count") || len(rec.Status.Outputs) != 0 {
		t.Fatalf("interrupted job: %+v", rec.Status)
	}
	half, err := e.padRecord(ctx, "half-a")
	if err != nil || half.Deleted.IsZero() {
		t.Fatalf("output of the interrupted job: %+v (%v), want deleted", half, err)
	}
	if _, err := e.dataKey(ctx, "half-a"); !errors.Is(err, ErrShredded) {
		t.Fatalf("key of the interrupted job's output: %v", err)
	}
	if revs, err := e.st.History(ctx, store.DataKeys, "half-a"); err != nil || len(revs) != 0 {
		t.Fatalf("key revisions left: %d (%v)", len(revs), err)
	}
	if _, err := e.blobs.Stat(ctx, padBlob("half-a")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("blob of the interrupted job's output: %v", err)
	}
	last, err := e.audit.Read(e.audit.Size() - 1)
	if err != nil {
		t.Fatal(err)
	}
	if last.Event.Kind != audit.KindDelete || last.Event.Job != job || len(last.Event.Pads) != 1 || last.Event.Pads[0] != "half-a" {
		t.Fatalf("last log event: %+v", last.Event)
	}
	if _, err := e.dataKey(ctx, "done-b"); err != nil {
		t.Fatalf("another job's output lost its key: %v", err)
	}
	if b, err := e.padRecord(ctx, "done-b"); err != nil || !b.Deleted.IsZero() {
		t.Fatalf("another job's output: %+v (%v)", b, err)
	}
	// Delivered once more (the ack was lost): nothing changes.
	size := e.audit.Size()
	if err := e.runJob(ctx, job); err != nil || e.audit.Size() != size {
		t.Fatalf("second delivery: %v, log grew from %d to %d", err, size, e.audit.Size())
	}
}

// recordAdmittedJob admits a rowcount job on the world's Pad and records it queued, as SubmitJob
// does, without queueing it; it returns the job's id.
func recordAdmittedJob(t *testing.T, w *world) string {
	t.Helper()
	ctx, e, id := context.Background(), w.e, newJobID()
	spec := api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}}
	a, err := e.admit(ctx, w.owner.Identity().ID(), id, &spec, true, nil)
	if err != nil || !a.allowed {
		t.Fatalf("admission: %v %v", err, a.reasons())
	}
	if err := e.createJSON(ctx, store.JobRecords, id, &jobRecord{Caller: w.owner.Identity().String(), Reserved: a.reserved,
		Status: api.JobStatus{ID: id, State: api.JobQueued, Submitter: w.owner.Identity().ID().String(), Spec: spec, Submitted: e.now().UTC()}}); err != nil {
		t.Fatal(err)
	}
	return id
}

// A job recorded as queued when its node stopped runs exactly once after the restart, whether
// its message never reached the queue (the node died in between: Start publishes it again) or
// reached it unclaimed (published again all the same, and dropped as a duplicate).
func TestQueuedJobRunsOnceAfterRestart(t *testing.T) {
	for _, published := range []bool{false, true} {
		t.Run(fmt.Sprintf("published=%v", published), func(t *testing.T) {
			ctx := context.Background()
			w, restart := newRestartableWorld(t)
			id := recordAdmittedJob(t, w) // what SubmitJob writes; the worker never started
			if published {
				if err := w.e.publish(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			restart()
			e := w.e
			e.cfg.MaxWait = 3 * time.Minute // a bound, ample even under -race
			e.Start(ctx)
			st, err := e.Job(ctx, w.owner.Identity(), id, true)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != api.JobDone || st.Outputs["count"] == "" {
				t.Fatalf("job queued before the restart is %s (%s), want done", st.State, fmtAPIErr(st.Error))
			}
			// Give a second message, had there been one, time to reach the worker.
			time.Sleep(500 * time.Millisecond)
			done := 0
			for i := range e.audit.Size() {
				en, err := e.audit.Read(i)
				if err != nil {
					t.Fatal(err)
				}
				if en.Event.Kind == audit.KindJobDone && en.Event.Job == id {
					done++
				}
			}
			if done != 1 {
				t.Fatalf("the job finished %d times, want once", done)
			}
		})
	}
}

// A revocation and a policy update stored by requests that crashed before logging them are
// logged, once, when the requests are sent again to the restarted engine.
func TestRetriedRevocationAndUpdateAreLogged(t *testing.T) {
	ctx := context.Background()
	w, restart := newRestartableWorld(t)
	e := w.e
	u := api.SignPolicyUpdate(w.owner, w.pad, ownerPolicy(w.owner, "2", ""), e.now())
	rv := api.SignRevocation(w.owner, w.pad, "leaving", e.now())
	// What UpdatePolicy and Revoke store before they log.
	key := policyKey(w.pad)
	if err := e.st.AdvanceVersion(ctx, key, 2, e.box.seal(store.Versions, key, u.Policy)); err != nil {
		t.Fatal(err)
	}
	if err := e.createJSON(ctx, store.Revocations, w.pad, rv); err != nil {
		t.Fatal(err)
	}
	restart()
	e = w.e
	count := func(kind audit.Kind) int {
		n := 0
		for i := range e.audit.Size() {
			en, err := e.audit.Read(i)
			if err != nil {
				t.Fatal(err)
			}
			if en.Event.Kind == kind && len(en.Event.Pads) == 1 && en.Event.Pads[0] == w.pad {
				n++
			}
		}
		return n
	}
	for range 2 {
		if _, err := e.UpdatePolicy(ctx, w.owner.Identity(), u); !errors.Is(err, api.ErrConflict) {
			t.Fatalf("update sent again: %v", err)
		}
		if _, err := e.Revoke(ctx, w.owner.Identity(), rv); !errors.Is(err, api.ErrConflict) {
			t.Fatalf("revocation sent again: %v", err)
		}
		if n, m := count(audit.KindPolicyUpdate), count(audit.KindRevoke); n != 1 || m != 1 {
			t.Fatalf("the log holds %d policy updates and %d revocations of the Pad, want one of each", n, m)
		}
	}
}

// A party the engine remembered is found again by its short id, also by an engine restarted on
// the same state, which starts with nothing in memory.
func TestRememberedPartySurvivesRestart(t *testing.T) {
	ctx := context.Background()
	w, restart := newRestartableWorld(t)
	p := newParty(t)
	if _, err := w.e.lookupParty(ctx, p.Identity().ID()); err == nil {
		t.Fatal("a party never seen was found")
	}
	w.e.rememberParty(ctx, p.Identity())
	w.e.rememberParty(ctx, p.Identity()) // known: no second record, no error
	restart()
	for range 2 {
		got, err := w.e.lookupParty(ctx, p.Identity().ID())
		if err != nil || !got.Equal(p.Identity()) {
			t.Fatalf("remembered party after a restart: %v (%v)", got, err)
		}
		w.e.rememberParty(ctx, p.Identity()) // found stored, remembered in memory
	}
}

// A job's queue message is published alongside its record: a worker that gets the message
// before the record exists waits for it and runs the job, rather than dropping the message.
// TestJobMessageOnAnotherNodeBeforeItsRecord: a worker of another node that gets a job's message
// before the record the submitting node writes alongside it hands the message back, and runs the
// job once the record exists. The two engines share one store and blob store, as two nodes of a
// cluster do; only the second one's workers run.
func TestJobMessageOnAnotherNodeBeforeItsRecord(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := newTestEngine(t)
	w := newWorld(t, a, "")
	b := newEngineOn(t, a)
	handedBack := make(chan struct{})
	var once sync.Once
	var ran atomic.Int32
	b.hook = func(stage string) {
		switch stage {
		case "no record yet":
			once.Do(func() { close(handedBack) })
		case "ran":
			ran.Add(1)
		}
	}
	a.hook = func(stage string) {
		if stage == "recording" { // hold the record back until the other node had the message
			select {
			case <-handedBack:
			case <-time.After(2 * time.Minute):
				t.Error("the other node never handed the message back")
			}
		}
	}
	b.Start(ctx)
	defer b.Close()
	st, err := a.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !st.State.Final() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if st, err = a.Job(ctx, w.owner.Identity(), st.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	if st.State != api.JobDone || ran.Load() != 1 {
		t.Fatalf("job is %s (%s) after %d runs on the other node; want done after one", st.State, fmtAPIErr(st.Error), ran.Load())
	}
}

// newEngineOn opens a second engine on e's store and blobs, with its own sandbox and audit log,
// as another node of e's cluster; it is closed when the test ends.
func newEngineOn(t *testing.T, e *Engine) *Engine {
	t.Helper()
	ctx := context.Background()
	sb, err := sandbox.New(ctx, sandbox.Config{Cache: compiled})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close(context.Background()) })
	ck := e.cfg.Cluster
	alog, err := audit.Open(t.TempDir(), audit.Options{Origin: "styx.test", Signer: rawSigner{ck}, PublicKey: ck.Identity().SigningKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	other, err := New(Config{Cluster: ck, StateKey: e.cfg.StateKey, Claims: e.cfg.Claims, Store: e.st, Blobs: e.blobs, Sandbox: sb, Audit: alog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

func TestJobMessageBeforeItsRecordWaits(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	waiting := make(chan struct{})
	var once sync.Once
	e.hook = func(stage string) {
		switch stage {
		case "awaiting record":
			once.Do(func() { close(waiting) })
		case "recording": // hold the record back until the worker has the message
			select {
			case <-waiting:
			case <-time.After(2 * time.Minute):
				t.Error("the worker never waited for the job's record")
			}
		}
	}
	e.cfg.MaxWait = 3 * time.Minute
	e.Start(ctx)
	st, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != api.JobDone {
		t.Fatalf("job whose message came first: %s (%s)", st.State, fmtAPIErr(st.Error))
	}
}
