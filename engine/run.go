package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/sandbox"
	"github.com/styx-tee/styx/store"
)

// abortError stops a running job because an input's policy no longer allows it.
type abortError struct{ reasons []string }

func (a *abortError) Error() string { return "job aborted: an input's policy no longer allows it" }

// work runs queued jobs until ctx ends.
func (e *Engine) work(ctx context.Context) {
	// The worker counts as idle from the moment it waits for a job until it gets one, across
	// the fetches that time out: bootAhead relies on it.
	idle := false
	setIdle := func(v bool) {
		if v != idle {
			idle = v
			if v {
				e.idle.Add(1)
			} else {
				e.idle.Add(-1)
			}
		}
	}
	defer setIdle(false)
	for ctx.Err() == nil {
		setIdle(true)
		jobs, err := e.st.Jobs().Fetch(ctx, 1, time.Second)
		if len(jobs) > 0 {
			setIdle(false)
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrNotFound) {
				e.log.Warn("fetch jobs", "err", err)
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		for _, j := range jobs {
			if e.runQueued(ctx, j) {
				// The job is over and its waiters answered: the worker counts as idle while
				// the queue is told, so that a job submitted meanwhile boots ahead (bootAhead).
				setIdle(true)
				if err := j.Ack(context.WithoutCancel(ctx)); err != nil {
					e.log.Warn("ack job", "job", j.ID, "err", err)
				}
			}
			// A spare guest for the next job of the program just run, started once the job's
			// waiters are answered and the queue told: it would take CPU from them.
			if prog, ok := e.spareAfter.LoadAndDelete(j.ID); ok {
				e.startSpare(prog.(string))
			}
		}
	}
}

// noRecordDeliveries is how many times a message whose job has no record is handed back before
// it is dropped: the record of a job submitted on another node is written alongside its message.
const noRecordDeliveries = 3

// runQueued runs the job of queue message j to a final state, or hands j back. It reports
// whether j is to be acknowledged, which its caller does.
func (e *Engine) runQueued(ctx context.Context, j *store.Job) (ack bool) {
	var msg struct{ ID string }
	if err := json.Unmarshal(j.Spec, &msg); err != nil || msg.ID != j.ID {
		e.log.Error("dropping malformed job message", "job", j.ID)
		j.Term("malformed")
		return false
	}
	var before *jobRecord
	var pending *pendingClaim
	if j.Seq != 0 {
		// A job this node is recording: its message came before its record.
		if recorded, recording := e.recording.Load(j.ID); recording {
			e.at("awaiting record")
			select {
			case <-recorded.(chan struct{}):
			case <-ctx.Done():
				return false
			}
		}
		if pending = e.claimAhead(ctx, j); pending != nil {
			before = pending.assumed
		} else {
			rec, dup, err := e.claimAndStart(ctx, j.ID, j.Seq)
			if ack, done := e.unclaimed(j, dup, err); done {
				return ack
			}
			before = rec
		}
	}
	defer e.claimed.Delete(j.ID) // if the job did not get to finish
	defer e.pending.Delete(j.ID) // if the run did not take it
	stop := e.heartbeat(ctx, j)
	var err error
	if before != nil {
		err = e.runFrom(ctx, before)
	} else {
		err = e.runJob(ctx, j.ID)
	}
	if errors.Is(err, errClaimLost) {
		// The claim found the job otherwise than this node recorded it: the run on the guest
		// booted ahead was stopped before anything of it was written, and the job goes on from
		// its record as the claim found it.
		if ack, done := e.unclaimed(j, pending.dup, pending.err); done {
			stop()
			return ack
		}
		err = e.runFrom(ctx, pending.before)
	}
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return false // shutting down: the message is redelivered, and seen as interrupted
		}
		e.log.Error("job", "job", j.ID, "err", err)
	}
	return true
}

// heartbeat tells the queue every third of its ack wait that this worker still runs j, until
// stop is called. Without it a job running longer than the ack wait would be delivered again
// and, seen as interrupted, marked failed while it still runs.
func (e *Engine) heartbeat(ctx context.Context, j *store.Job) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(e.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := j.InProgress(); err != nil {
					e.log.Warn("job heartbeat", "job", j.ID, "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// unclaimed says what becomes of queue message j when its claim (claimAndStart) found the job
// bound to another message (dup) or failed: done reports whether the message is done with, and
// ack whether it is to be acknowledged.
func (e *Engine) unclaimed(j *store.Job, dup bool, err error) (ack, done bool) {
	switch {
	case errors.Is(err, store.ErrNotFound) && j.Delivered < noRecordDeliveries:
		// Submitted on another node, whose record may still be on its way.
		e.at("no record yet")
		if err := j.Nak(time.Second); err != nil {
			e.log.Warn("nak job", "job", j.ID, "err", err)
		}
		return false, true
	case errors.Is(err, store.ErrNotFound):
		e.log.Error("dropping a message for a job with no record", "job", j.ID)
		j.Term("no such job")
		return false, true
	case err != nil:
		e.log.Warn("claim job message", "job", j.ID, "err", err)
		return false, true // delivered again later
	case dup:
		e.log.Info("dropping a duplicate message for a job", "job", j.ID, "seq", j.Seq)
		return true, true
	}
	return false, false
}

// claimAndStart binds job id to the queue message with sequence seq and, if the job is still
// queued, marks it running, in one durable write. It returns the record as it was before (its
// state says what runFrom does) and whether the job is bound to another message, which makes
// this one a duplicate to drop.
func (e *Engine) claimAndStart(ctx context.Context, id string, seq uint64) (before *jobRecord, dup bool, err error) {
	if !store.ValidKey(id) {
		return nil, false, fmt.Errorf("%w: job %q", store.ErrNotFound, id)
	}
	// A job submitted on this node with its guest booted ahead: its record as written saves
	// reading it (a write in between fails the compare-and-set, and it is read then).
	known, rev := e.bootRecord(id)
	return e.claimFrom(ctx, id, seq, known, rev)
}

// claimFrom is claimAndStart starting from known, the record at revision rev (nil: read it).
func (e *Engine) claimFrom(ctx context.Context, id string, seq uint64, known *jobRecord, rev uint64) (before *jobRecord, dup bool, err error) {
	var claimed jobRecord
	rev, err = updateJSONFrom(ctx, e, store.JobRecords, id, known, rev, func(r *jobRecord) error {
		if r.Status.ID != id {
			return fmt.Errorf("%w: job record %s names %s", errTamperedState, id, r.Status.ID)
		}
		if r.Seq != 0 && r.Seq != seq {
			dup = true
			return errUnchanged
		}
		b := *r
		before = &b
		changed := r.Seq == 0
		r.Seq = seq
		if r.Status.State == api.JobQueued {
			r.Status.State, r.Status.Started = api.JobRunning, e.now().UTC()
			changed = true
		}
		if !changed {
			return errUnchanged
		}
		claimed = *r
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		err = nil
	case err == nil:
		e.claimed.Store(id, claimedRecord{&claimed, rev})
	}
	return before, dup, err
}

// claimedRecord is a job record as a claim wrote it, and its revision.
type claimedRecord struct {
	rec *jobRecord
	rev uint64
}

// runJob runs one admitted job to a final state.
func (e *Engine) runJob(ctx context.Context, id string) error {
	rec, err := e.jobRecord(ctx, id)
	if err != nil {
		return err
	}
	if rec.Status.State == api.JobQueued {
		if err := updateJSON(ctx, e, store.JobRecords, id, func(r *jobRecord) error {
			r.Status.State, r.Status.Started = api.JobRunning, e.now().UTC()
			return nil
		}); err != nil {
			return err
		}
	}
	return e.runFrom(ctx, rec)
}

// runFrom takes a job to a final state from rec, its record as it was before this delivery
// marked it running: a queued job runs; one already running was interrupted by a stop of the
// node; a final one is left alone.
func (e *Engine) runFrom(ctx context.Context, rec *jobRecord) error {
	id := rec.Status.ID
	switch rec.Status.State {
	case api.JobQueued:
	case api.JobRunning:
		// The node stopped while this job ran. Its uses were reserved at admission and still
		// count; outputs it may have begun sealing are destroyed (all or none).
		if err := e.discardOutputs(ctx, id, "the node stopped while the job that derived it ran"); err != nil {
			return err
		}
		return e.finish(ctx, id, api.JobFailed, api.Errorf(api.ErrInternal,
			"the node stopped while the job ran; its admitted uses still count; submit it again"), nil, "")
	default:
		return nil // already final
	}
	caller, err := party.ParseIdentity(rec.Caller)
	if err != nil {
		return err
	}
	return e.execute(ctx, caller, &rec.Status, rec.Reserved)
}

// execute runs an admitted job; own are the uses its admission reserved.
func (e *Engine) execute(ctx context.Context, caller *party.Identity, st *api.JobStatus, own map[string]uint64) error {
	spec := &st.Spec
	// Policies may have changed since admission (update, revocation, expiry): the job is decided
	// again while its guest boots, and the program gets no input before that decision allows it
	// (jobHost.prepare). The guest may have been booted ahead by this node when it admitted
	// the job (boot.go); otherwise it is started here.
	e.spareAfter.Store(st.ID, spec.Program) // for the next job of the program (work)
	g := e.takeBoot(st.ID)
	if g == nil {
		g = e.takeSpare(spec.Program, func(ctx context.Context, cancel context.CancelCauseFunc) *jobHost {
			return e.newJobHost(ctx, cancel, caller.ID(), st.ID, spec)
		})
	}
	if g != nil {
		e.at("boot taken")
		// The boot lives on the workers' context; this job's (ctx) stops it too.
		stopLink := context.AfterFunc(ctx, func() { g.cancel(context.Cause(ctx)) })
		defer stopLink()
	} else {
		prog, err := e.compiled(ctx, spec.Program)
		if err != nil {
			return e.finish(ctx, st.ID, api.JobFailed, api.Errorf(api.ErrInternal, "%v", err), nil, "")
		}
		defer prog.Close(ctx)
		jobCtx, cancel := context.WithCancelCause(ctx)
		g = &boot{id: st.ID, ctx: jobCtx, cancel: cancel, ran: make(chan error, 1),
			host: e.newJobHost(jobCtx, cancel, caller.ID(), st.ID, spec)}
		go func() {
			_, err := e.sb.RunProgram(jobCtx, prog, g.host)
			g.ran <- err
		}()
	}
	jobCtx, cancel, host := g.ctx, g.cancel, g.host
	defer cancel(nil)
	host.claim = e.takeClaim(st.ID)
	stopLost := host.claim.stopIfLost(cancel)
	defer stopLost()
	defer host.dropEarly(context.WithoutCancel(ctx)) // if a path below did not (shutting down)
	e.at("starting")
	host.start(own)
	stopWatch := e.watch(jobCtx, cancel, caller, st, own)
	runErr := <-g.ran
	stopWatch()
	host.done()
	if err := host.claim.wait(); err != nil {
		host.dropEarly(context.WithoutCancel(ctx)) // nothing of it was written
		return err
	}
	e.at("ran")
	var ab *abortError
	aborted := errors.As(context.Cause(jobCtx), &ab)
	adm := host.adm // nil only if the start decision failed
	if aborted || host.startErr != nil || adm == nil || !adm.allowed || runErr != nil {
		// The outputs the program sealed as it closed them are not going to the output
		// pipeline (a failed program's log is sealed again there): they are destroyed before
		// the job's end is recorded.
		host.dropEarly(context.WithoutCancel(ctx))
	}
	switch {
	case aborted && adm == nil: // the start decision failed because the job was being aborted
		return e.abort(ctx, caller, st, nil, ab.reasons)
	case host.startErr != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return e.finish(ctx, st.ID, api.JobFailed, api.Errorf(api.ErrInternal, "%v", host.startErr), nil, "")
	case aborted: // by the start decision (its reasons), a re-check or an expiry
		return e.abort(ctx, caller, st, adm.pads(), ab.reasons)
	case !adm.allowed:
		return e.abort(ctx, caller, st, adm.pads(), adm.reasons())
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A failed program's outputs are destroyed, but its declared log output (checked by the
		// output rules like any output) is kept: that is how its submitter learns why. The whole
		// error goes there, under the policies; the job's own error says only which way the run
		// failed, because an exit code or a faulting pointer is the program's choice, and the
		// program may have chosen it from the data.
		host.Log(fmt.Appendf(nil, "styx: the program failed: %v\n", runErr))
		var outs map[string]string
		if h := host.logsOnly(); h != nil {
			var err error
			if outs, _, err = e.outputPipeline(ctx, caller, st, h); errors.As(err, &ab) {
				return e.abort(ctx, caller, st, adm.pads(), ab.reasons)
			}
		}
		return e.finish(ctx, st.ID, api.JobFailed, api.Errorf(api.ErrBadRequest,
			"program failed: %s (the whole error is in the job's log output, if it declared one the policies let it have)", sandbox.PublicError(runErr)), outs, "")
	}
	outs, receipt, err := e.outputPipeline(ctx, caller, st, host)
	if err != nil {
		// Outputs sealed before the failure must not outlive the job: all or none.
		if derr := e.discardOutputs(context.WithoutCancel(ctx), st.ID, "the job that derived it failed while sealing its outputs"); derr != nil {
			return derr
		}
		if errors.As(err, &ab) {
			return e.abort(ctx, caller, st, adm.pads(), ab.reasons)
		}
		var apiErr *api.Error
		if !errors.As(err, &apiErr) {
			apiErr = api.Errorf(api.ErrInternal, "%v", err)
		}
		return e.finish(ctx, st.ID, api.JobFailed, apiErr, nil, "")
	}
	return e.finish(ctx, st.ID, api.JobDone, nil, outs, receipt)
}

// watch re-checks every input's policy each Recheck interval while the job runs, and aborts it
// when one no longer allows the job (expired, revoked, policy updated).
func (e *Engine) watch(ctx context.Context, cancel context.CancelCauseFunc, caller *party.Identity, st *api.JobStatus, own map[string]uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(e.cfg.Recheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			adm, err := e.admit(ctx, caller.ID(), st.ID, &st.Spec, false, own)
			if err != nil {
				if ctx.Err() == nil {
					cancel(&abortError{reasons: []string{"re-check failed: " + err.Error()}})
				}
				return
			}
			if !adm.allowed {
				cancel(&abortError{reasons: adm.reasons()})
				e.at("re-check denied")
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// abort ends a job whose inputs' policies stopped allowing it; its outputs were never sealed, or
// were destroyed.
func (e *Engine) abort(ctx context.Context, caller *party.Identity, st *api.JobStatus, pads, reasons []string) error {
	ev := audit.Event{Kind: audit.KindJobAbort, Actor: caller.ID().String(), Job: st.ID, Pads: pads, Reasons: reasons}
	if _, err := e.audit.Append(ctx, ev); err != nil {
		return err
	}
	return e.finish(ctx, st.ID, api.JobAborted, api.Denied("job "+st.ID+" aborted: outputs destroyed", reasons...), nil, "")
}

// finish records a job's final state and wakes its waiters.
func (e *Engine) finish(ctx context.Context, id string, state api.JobState, jobErr *api.Error, outs map[string]string, receipt string) error {
	ctx = context.WithoutCancel(ctx)
	var final api.JobStatus
	// The record as this worker's claim wrote it saves reading it back.
	var known *jobRecord
	var rev uint64
	if c, ok := e.claimed.LoadAndDelete(id); ok {
		known, rev = c.(claimedRecord).rec, c.(claimedRecord).rev
	}
	_, err := updateJSONFrom(ctx, e, store.JobRecords, id, known, rev, func(r *jobRecord) error {
		r.Status.State, r.Status.Error, r.Status.Outputs, r.Status.Receipt = state, jobErr, outs, receipt
		r.Status.Finished = e.now().UTC()
		final = r.Status
		return nil
	})
	if err != nil {
		e.notify(id, nil) // the waiters read the record
	} else {
		e.notify(id, &final)
	}
	if err != nil {
		return fmt.Errorf("engine: record job %s: %w", id, err)
	}
	e.log.Info("job finished", "job", id, "state", state)
	return nil
}

// discardOutputs destroys every derived Pad job id sealed (key, blob, then the record marked
// deleted, each deletion audited): what a job that did not finish left behind. It is a no-op
// for a job that sealed nothing.
func (e *Engine) discardOutputs(ctx context.Context, id, why string) error {
	recs, err := e.allPads(ctx)
	if err != nil {
		return err
	}
	var gone []string
	for _, r := range recs {
		if !r.Derived || r.Job != id || !r.Deleted.IsZero() {
			continue
		}
		if err := e.shred(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("engine: discard output %s of job %s: %w", r.ID, id, err)
		}
		if err := e.blobs.Delete(ctx, padBlob(r.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("engine: discard output %s of job %s: %w", r.ID, id, err)
		}
		if err := updateJSON(ctx, e, store.Pads, r.ID, func(p *padRecord) error {
			p.Deleted = e.now().UTC()
			return nil
		}); err != nil {
			return err
		}
		gone = append(gone, r.ID)
	}
	if len(gone) == 0 {
		return nil
	}
	_, err = e.audit.Append(ctx, audit.Event{Kind: audit.KindDelete, Job: id, Pads: gone, Reasons: []string{why}})
	return err
}
