package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
)

// stageSignal returns a hook that records every stage in log and a channel that receives once
// each time stage is reached.
func stageSignal(log *stageLog, stage string) (func(string), chan struct{}) {
	c := make(chan struct{}, 16)
	return func(s string) {
		log.add(s)
		if s == stage {
			c <- struct{}{}
		}
	}, c
}

func awaitStage(t *testing.T, c chan struct{}, stage string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q", stage)
	}
}

// TestSpareGuestRunsTheNextJob: once a job of a program is over, a spare guest of the program
// is started; the next job of the program, waited for or not, runs on it, with the same result
// as a guest started for it, and a new spare follows.
func TestSpareGuestRunsTheNextJob(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	var log stageLog
	hook, started := stageSignal(&log, "spare started")
	e.hook = hook
	startIdle(t, e)
	if st := w.run(t); st.State != api.JobDone {
		t.Fatalf("first job is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	awaitStage(t, started, "spare started")
	if err := e.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	n := len(log.list())
	st := w.run(t) // waited for: booted ahead, on the spare
	if st.State != api.JobDone {
		t.Fatalf("job on the spare is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	if got := log.list()[n:]; !slices.Contains(got, "spare taken") || slices.Index(got, "spare taken") > slices.Index(got, "booted") {
		t.Fatalf("the waited-for job did not boot on the spare: %v", got)
	}
	if got := w.releasedCount(t, st); got != tableRows {
		t.Fatalf("the spare counted %d rows, want %d", got, tableRows)
	}

	awaitStage(t, started, "spare started")
	if err := e.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	n = len(log.list())
	st = w.runQueuedJob(t) // not waited for: the worker takes the spare
	if got := log.list()[n:]; !slices.Contains(got, "spare taken") || slices.Contains(got, "booted") {
		t.Fatalf("the worker did not run the job on the spare: %v", got)
	}
	if got := w.releasedCount(t, st); got != tableRows {
		t.Fatalf("the spare counted %d rows, want %d", got, tableRows)
	}
}

// runQueuedJob submits the world's job without waiting, then waits for its end.
func (w *world) runQueuedJob(t *testing.T) *api.JobStatus {
	t.Helper()
	ctx := context.Background()
	st, err := w.e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if err == nil {
		st, err = w.e.Job(ctx, w.owner.Identity(), st.ID, true)
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.State != api.JobDone {
		t.Fatalf("job is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	return st
}

// TestUnusedSpareStopped: a spare no job takes within bootWait is stopped, having been given
// nothing; the next job starts its own guest.
func TestUnusedSpareStopped(t *testing.T) {
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	e.bootWait = 50 * time.Millisecond
	var log stageLog
	hook, dropped := stageSignal(&log, "spare dropped")
	e.hook = hook
	startIdle(t, e)
	w.run(t)
	awaitStage(t, dropped, "spare dropped")
	e.mu.Lock()
	left := len(e.spares)
	e.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d spares left after the drop", left)
	}
	opened := strings.Count(strings.Join(log.list(), "\n"), "open pad")
	if opened != 1 {
		t.Fatalf("%d Pads opened for one job and a spare", opened)
	}
	n := len(log.list())
	if st := w.run(t); st.State != api.JobDone {
		t.Fatalf("job after the drop is %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	if got := log.list()[n:]; slices.Contains(got, "spare taken") {
		t.Fatalf("a job took the dropped spare: %v", got)
	}
}

// TestSparesOff: with NoSpares, no spare is started.
func TestSparesOff(t *testing.T) {
	e := newTestEngine(t)
	e.cfg.NoSpares = true
	w := newWorld(t, e, "")
	var log stageLog
	e.hook = log.add
	startIdle(t, e)
	w.run(t)
	if err := e.Settle(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.run(t)
	if got := log.list(); slices.Contains(got, "spare started") {
		t.Fatalf("a spare was started with NoSpares: %v", got)
	}
}

// TestLateHost: a spare's host gives its guest nothing until a job takes it, then the job's
// host, with the log lines the guest wrote before; stopped first, it gives nothing at all.
func TestLateHost(t *testing.T) {
	e := newTestEngine(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	l := newLateHost(ctx)
	l.Log([]byte("before\n"))
	got := make(chan []byte)
	go func() { got <- l.Params() }() // waits for the job
	h := e.newJobHost(ctx, cancel, newParty(t).Identity().ID(), "job-1", &api.JobSpec{Params: []byte(`{"k":1}`)})
	select {
	case p := <-got:
		t.Fatalf("the guest got %q before a job took it", p)
	case <-time.After(20 * time.Millisecond):
	}
	l.bind(h)
	if p := <-got; string(p) != `{"k":1}` {
		t.Fatalf("params after bind: %q", p)
	}
	l.Log([]byte("after\n"))
	if s := h.logs.String(); s != "before\nafter\n" {
		t.Fatalf("the job's log is %q", s)
	}

	stopped, stop := context.WithCancel(context.Background())
	l = newLateHost(stopped)
	stop()
	if in := l.Inputs(); in != nil {
		t.Fatalf("a stopped spare listed inputs %v", in)
	}
	if _, err := l.Open("in"); !errors.Is(err, errNoJob) {
		t.Fatalf("a stopped spare opened an input: %v", err)
	}
	if _, err := l.Create("out", "aggregate"); !errors.Is(err, errNoJob) {
		t.Fatalf("a stopped spare created an output: %v", err)
	}
}
