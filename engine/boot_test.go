package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// stageLog records the engine's hook stages in order.
type stageLog struct {
	mu     sync.Mutex
	stages []string
}

func (l *stageLog) add(s string) {
	l.mu.Lock()
	l.stages = append(l.stages, s)
	l.mu.Unlock()
}

func (l *stageLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.stages)
}

// before reports whether stage a was recorded, and before any b.
func (l *stageLog) before(a, b string) bool {
	s := l.list()
	i, j := slices.Index(s, a), slices.Index(s, b)
	return i >= 0 && (j < 0 || i < j)
}

// startIdle starts e's workers and waits until one waits for a job.
func startIdle(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.Start(ctx)
	t.Cleanup(func() { e.Close(); cancel() })
	for deadline := time.Now().Add(10 * time.Second); e.idle.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no worker became idle")
		}
	}
}

// tableRows is how many data rows the table of world.uploadWith holds.
const tableRows = 2

// releasedCount releases the count output of a rowcount job to the world's owner.
func (w *world) releasedCount(t *testing.T, st *api.JobStatus) int64 {
	t.Helper()
	rc, err := w.e.Release(context.Background(), w.owner.Identity(), st.Outputs["count"])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, pt, err := pad.Open(rc, w.owner)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Total int64 }
	b, err := io.ReadAll(pt)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		t.Fatalf("count output %q: %v", b, err)
	}
	return out.Total
}

// TestBootedGuestRunsItsJob: with a worker idle, a waited-for job's guest boots while the job
// is admitted and recorded, and the worker that claims the job runs it on that guest. Its Pads
// are opened once the admission has reserved the job's uses, and its start decision, with
// nothing stored since the admission, is the admission's decided again.
func TestBootedGuestRunsItsJob(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	var log stageLog
	e.hook = log.add
	startIdle(t, e)
	st := w.run(t)
	if st.State != api.JobDone {
		t.Fatalf("job is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	if !log.before("booted", "recording") {
		t.Fatalf("the guest did not boot before the job was recorded: %v", log.list())
	}
	if !slices.Contains(log.list(), "claim durable") {
		t.Fatalf("the job booted ahead did not start before its claim was durable: %v", log.list())
	}
	if !log.before("boot taken", "starting") || !log.before("reserve", "open pad") || slices.Contains(log.list(), "boot dropped") {
		t.Fatalf("the job did not run on its booted guest, its Pad opened after its uses were reserved: %v", log.list())
	}
	if !log.before("start decision", "start decision on the admission") {
		t.Fatalf("the start decision read every chain again, with nothing stored since the admission: %v", log.list())
	}
	if !log.before("sealing early", "ran") {
		t.Fatalf("the output was not sealed when the program closed it: %v", log.list())
	}
	if !log.before("ran", "last decision on the start's chains") {
		t.Fatalf("the last decision read every chain again, with nothing stored since the admission: %v", log.list())
	}
	if got := w.releasedCount(t, st); got != tableRows {
		t.Fatalf("booted guest counted %d rows, want %d", got, tableRows)
	}
}

// TestBootDroppedWhenAdmissionDenies loses the race for the input's last use after the guest
// booted: the job is denied and its guest stopped, without a Pad opened.
func TestBootDroppedWhenAdmissionDenies(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {use: 1}}")
	var log stageLog
	e.hook = func(stage string) {
		log.add(stage)
		if stage == "reserve" { // another request takes the last use
			if _, err := e.st.Reserve(ctx, counterKey(policy.CounterKey{Pad: w.pad, Action: policy.ActionUse}), 1, 1); err != nil {
				t.Errorf("racing reservation: %v", err)
			}
		}
	}
	startIdle(t, e)
	_, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Wait: true})
	if !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "lifecycle.max_uses.use") {
		t.Fatalf("job that lost the race: %v", err)
	}
	if !log.before("booted", "reserve") || !slices.Contains(log.list(), "boot dropped") {
		t.Fatalf("the denied job's guest was not booted, then dropped: %v", log.list())
	}
	if slices.Contains(log.list(), "open pad") || slices.Contains(log.list(), "boot taken") {
		t.Fatalf("the denied job's guest went on: %v", log.list())
	}
	waitSlotsFree(t, e)
}

// TestUnclaimedBootDropped: a booted guest that no worker takes in time (here: the job is
// recorded only after the boot's wait) is stopped, and the worker then runs the job from the
// start, with the same result.
func TestUnclaimedBootDropped(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	e.bootWait = time.Millisecond
	var log stageLog
	dropped := make(chan struct{})
	e.hook = func(stage string) {
		log.add(stage)
		switch stage {
		case "boot dropped":
			close(dropped)
		case "recording":
			select {
			case <-dropped:
			case <-time.After(10 * time.Second):
				t.Error("the unclaimed boot was not dropped")
			}
		}
	}
	startIdle(t, e)
	st := w.run(t)
	if st.State != api.JobDone {
		t.Fatalf("job is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	if !log.before("booted", "boot dropped") || slices.Contains(log.list(), "boot taken") {
		t.Fatalf("the boot was not dropped before the claim: %v", log.list())
	}
	if got := w.releasedCount(t, st); got != tableRows {
		t.Fatalf("job whose boot was dropped counted %d rows, want %d", got, tableRows)
	}
	waitSlotsFree(t, e)
}

// waitSlotsFree waits until every boot slot is released: a dropped guest gives its slot back
// once it has stopped.
func waitSlotsFree(t *testing.T, e *Engine) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(e.bootSlots) != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d boot slots still held", len(e.bootSlots))
		}
	}
}

// TestFinishAfterAnotherWrite: a job's final state is written from the record as its claim
// wrote it, without reading it back; a write made to the record since then is kept, not
// overwritten.
func TestFinishAfterAnotherWrite(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	e.hook = func(stage string) {
		if stage != "ran" {
			return
		}
		ids, err := e.st.Keys(ctx, store.JobRecords, "")
		if err != nil || len(ids) != 1 {
			t.Errorf("job records %v (%v), want one", ids, err)
			return
		}
		if err := updateJSON(ctx, e, store.JobRecords, ids[0], func(r *jobRecord) error {
			r.Status.Spec.Params = []byte(`"written meanwhile"`)
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	startIdle(t, e)
	st := w.run(t)
	rec, err := e.jobRecord(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status.State != api.JobDone || string(rec.Status.Spec.Params) != `"written meanwhile"` {
		t.Fatalf("final record: %s with params %s; want done, with the write made while the job ran", rec.Status.State, rec.Status.Spec.Params)
	}
	if _, ok := e.claimed.Load(st.ID); ok {
		t.Fatal("the claimed record outlived its job")
	}
}

// changeCase is a change made to a job's inputs at one stage of the job, which must deny it.
type changeCase struct {
	name, lifecycle string // EXPIRES in lifecycle is replaced by an hour from now
	change          func(t *testing.T, w *world, clock *offsetClock)
	short           bool   // the decision after the change is taken on the chains already read
	reason          string // in the job's error
}

// runChanged runs a job on a Pad with c's lifecycle, makes c's change at stage, and checks
// that the job ends aborted for c's reason and that the stage marker short is logged if, and
// only if, c.short. It returns the stages logged.
func runChanged(t *testing.T, c changeCase, stage, short string) []string {
	t.Helper()
	e := newTestEngine(t)
	clock := &offsetClock{}
	e.now = clock.now
	w := newWorld(t, e, strings.ReplaceAll(c.lifecycle, "EXPIRES", e.now().Add(time.Hour).UTC().Format(time.RFC3339)))
	var log stageLog
	var changed atomic.Bool
	e.hook = func(s string) {
		log.add(s)
		if s == stage && !changed.Swap(true) {
			c.change(t, w, clock)
		}
	}
	startIdle(t, e)
	st := w.run(t)
	if !changed.Load() {
		t.Fatalf("the job never reached %q", stage)
	}
	if st.State != api.JobAborted || len(st.Outputs) != 0 || !strings.Contains(fmtAPIErr(st.Error), c.reason) {
		t.Fatalf("job is %s (%s), outputs %v; want aborted for %q", st.State, fmtAPIErr(st.Error), st.Outputs, c.reason)
	}
	if got := slices.Contains(log.list(), short); got != c.short {
		t.Fatalf("%s: %v, want %v: %v", short, got, c.short, log.list())
	}
	return log.list()
}

func expiry() changeCase {
	return changeCase{name: "expiry", lifecycle: "lifecycle: {expires: EXPIRES}", short: true, reason: "lifecycle.expires",
		change: func(t *testing.T, w *world, clock *offsetClock) { clock.advance(2 * time.Hour) }}
}

// TestLastDecisionOnTheStartsChains changes what the job's last decision must see once its
// program has ended. With nothing stored since the chains were read (an expiry), the start's
// requests are decided again at the new time, and deny; after a policy update, which moves
// the epoch, every chain is read again, and the new policy denies. Nothing is sealed.
func TestLastDecisionOnTheStartsChains(t *testing.T) {
	for _, c := range []changeCase{expiry(), {name: "policy update", reason: "lifecycle.expires",
		change: func(t *testing.T, w *world, clock *offsetClock) {
			w.update(t, "2", "lifecycle: {expires: "+clock.now().Add(-time.Hour).UTC().Format(time.RFC3339)+"}")
		}}} {
		t.Run(c.name, func(t *testing.T) {
			if log := runChanged(t, c, "ran", "last decision on the start's chains"); slices.Contains(log, "seal") {
				t.Fatalf("outputs were sealed for a job its last decision denies: %v", log)
			}
		})
	}
}

// TestStartDecisionOnTheAdmission changes what the job's start decision must see after the
// admission of a job whose guest booted ahead, before the job is claimed. With nothing stored
// since (an expiry), the admission's requests are decided again, at the new time, and deny;
// after a revocation, which moves the epoch, every chain is read again, and that denies.
// Either way the guest gets no input and the job ends aborted, naming the reason.
func TestStartDecisionOnTheAdmission(t *testing.T) {
	for _, c := range []changeCase{expiry(), {name: "revocation", reason: "withdrawn after admission",
		change: func(t *testing.T, w *world, _ *offsetClock) { w.revoke(t, "withdrawn after admission") }}} {
		t.Run(c.name, func(t *testing.T) {
			// At "recording" the job is admitted and its Pads are being opened ahead; it is not
			// yet claimed.
			log := runChanged(t, c, "recording", "start decision on the admission")
			if !slices.Contains(log, "booted") || !slices.Contains(log, "boot taken") {
				t.Fatalf("the job did not run on a guest booted ahead: %v", log)
			}
		})
	}
}

// TestClaimLostStopsTheRun: a job booted ahead starts while its worker's claim is written; here
// another message is bound to the job meanwhile. The claim then does not hold: the run is
// stopped, the output the program closed is not written, and nothing of the job is recorded,
// sealed or logged; the message is dropped as a duplicate.
func TestClaimLostStopsTheRun(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	blobs := watchBlobs(e)
	e.cfg.MaxWait = 2 * time.Second // the job never ends: the other message holds it
	var log stageLog
	closed := make(chan struct{})
	var once sync.Once
	var job atomic.Value
	e.hook = func(s string) {
		log.add(s)
		switch s {
		case "sealing early":
			once.Do(func() { close(closed) })
		case "claiming": // once the program has closed its output, bind the job elsewhere
			select {
			case <-closed:
			case <-time.After(30 * time.Second):
				t.Error("the program did not close its output before the claim was durable")
			}
			keys, err := e.st.Keys(ctx, store.JobRecords, "")
			if err != nil || len(keys) != 1 {
				t.Errorf("job records: %v, %v", keys, err)
				return
			}
			job.Store(keys[0])
			if err := updateJSON(ctx, e, store.JobRecords, keys[0], func(r *jobRecord) error { r.Seq = 999; return nil }); err != nil {
				t.Errorf("binding the job to another message: %v", err)
			}
		}
	}
	startIdle(t, e)
	if st, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Wait: true}); err == nil && st.State.Final() {
		t.Fatalf("the job whose claim was lost ended %s", st.State)
	}
	for deadline := time.Now().Add(10 * time.Second); !slices.Contains(log.list(), "claim durable"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the claim never ended: %v", log.list())
		}
	}
	e.Close() // waits for the worker
	if !log.before("starting", "claim durable") || !log.before("sealing early", "claim durable") {
		t.Fatalf("the run did not begin before the claim was durable: %v", log.list())
	}
	if slices.Contains(log.list(), "seal") {
		t.Fatalf("the output pipeline ran for a job whose claim was lost: %v", log.list())
	}
	if got := blobs.put(); len(got) != 0 {
		t.Fatalf("blobs written for a job whose claim was lost: %v", got)
	}
	if n := assertOutputsDestroyed(t, e); n != 0 {
		t.Fatalf("%d derived Pad records for a job whose claim was lost", n)
	}
	assertNoReceipt(t, e)
	rec, err := e.jobRecord(ctx, job.Load().(string))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 999 || rec.Status.State != api.JobQueued {
		t.Fatalf("the job record is %s bound to %d: the lost claim wrote over it", rec.Status.State, rec.Seq)
	}
}
