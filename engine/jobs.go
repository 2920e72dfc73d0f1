package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/store"
)

// jobRecord is the node's record of a job.
type jobRecord struct {
	Status api.JobStatus `json:"status"`
	Caller string        `json:"caller"` // the submitter's full identity
	// Seq is the queue's stream sequence of the message that carries the job, once known: the
	// job runs from that message only, and any other message for it is a duplicate.
	Seq uint64 `json:"seq,omitempty"`
	// Reserved holds the uses the job's admission took, by counter key: its re-checks while it
	// runs subtract them (admit's own).
	Reserved map[string]uint64 `json:"reserved,omitempty"`
}

// SubmitJob admits a job against every input's chain, reserves its uses, records the decision
// and queues it. A denied job is recorded too, and the error carries every reason.
func (e *Engine) SubmitJob(ctx context.Context, caller *party.Identity, spec *api.JobSpec) (*api.JobStatus, error) {
	e.rememberParty(ctx, caller)
	id := newJobID()
	queued := false
	epoch, read := e.epoch.Load(), time.Now() // before the admission's first read (admitAhead)
	a, err := e.evaluateJob(ctx, caller.ID(), id, spec)
	if err != nil {
		return nil, err
	}
	var b *boot
	if a.allowed && spec.Wait {
		// The guest boots while the job is admitted, recorded and claimed (boot.go); it gets
		// nothing of the job before the claim and the start decision. Only for a submitter
		// who waits for the job's end: on a small machine the boot takes CPU from the admission,
		// which is all that a submitter who does not wait waits for.
		b = e.bootAhead(caller, id, spec)
		defer func() {
			if !queued {
				e.dropBoot(b, errBootDropped)
			}
		}()
	}
	if err := e.reserveAndLog(ctx, caller.ID(), id, spec, a); err != nil {
		return nil, err
	}
	if a.allowed {
		e.admitAhead(b, a, epoch, read)
	}
	rec := &jobRecord{Caller: caller.String(), Reserved: a.reserved, Status: api.JobStatus{
		ID: id, State: api.JobQueued, Submitter: caller.ID().String(), Spec: *spec, Submitted: e.now().UTC(),
	}}
	rec.Status.Spec.Wait = false
	if !a.allowed {
		rec.Status.State = api.JobDenied
		rec.Status.Error = api.Denied("job "+id+" denied", a.reasons()...)
		rec.Status.Finished = rec.Status.Submitted
	}
	if !a.allowed {
		if err := e.createJSON(ctx, store.JobRecords, id, rec); err != nil {
			return nil, err
		}
		return nil, rec.Status.Error
	}
	// The record and the queue message are written at once (each waits on a durable write). A
	// worker of this node that gets the message first waits for the record (recording); one
	// of another node finds no record yet and hands the message back for later (runQueued). A
	// crash after the record but before the message leaves a queued job without a message:
	// Start publishes it again.
	var w *jobWaiter
	if spec.Wait { // before the job can end: the record written below is not final
		w = e.waiter(id)
		defer e.dropWaiter(id, w)
	}
	recorded := make(chan struct{})
	e.recording.Store(id, recorded)
	pubErr := make(chan error, 1)
	go func() { pubErr <- e.publish(ctx, id) }()
	e.at("recording")
	rev, err := e.st.Create(ctx, store.JobRecords, id, e.sealJSON(store.JobRecords, id, rec))
	if err == nil {
		e.recordAhead(b, rec, rev)
	}
	e.recording.Delete(id)
	close(recorded)
	if perr := <-pubErr; err == nil {
		err = perr
	}
	if err != nil {
		return nil, err
	}
	queued = true
	e.log.Info("job admitted", "job", id, "submitter", caller.ID(), "program", spec.Program)
	if !spec.Wait {
		return &rec.Status, nil // as recorded: queued (a worker may have started it since)
	}
	return e.await(ctx, id, w)
}

// publish queues job id. The queue deduplicates messages by job id within its window, so
// publishing a job twice yields one message; after the window, the worker that receives a
// message binds the job to its sequence (claim) and drops any other message for it as a
// duplicate. The submitter does not claim: that would be one more durable write before the
// job is admitted, and the worker's claim covers every case.
func (e *Engine) publish(ctx context.Context, id string) error {
	msg, _ := json.Marshal(struct{ ID string }{id})
	if _, err := e.st.Jobs().Publish(ctx, id, msg); err != nil {
		return fmt.Errorf("engine: queue job %s: %w", id, err)
	}
	return nil
}

var errUnchanged = errors.New("unchanged")

// requeue publishes again every queued job no worker has claimed yet: a crash between recording
// a job and queueing it would otherwise leave it queued forever. The queue's deduplication and
// the worker's claim make this harmless for a job whose message did make it.
func (e *Engine) requeue(ctx context.Context) {
	keys, err := e.st.Keys(ctx, store.JobRecords, "")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.log.Warn("requeue jobs", "err", err)
		return
	}
	for _, id := range keys {
		rec, err := e.jobRecord(ctx, id)
		if err != nil {
			e.log.Warn("requeue jobs", "job", id, "err", err)
			continue
		}
		if rec.Status.State != api.JobQueued || rec.Seq != 0 {
			continue
		}
		if err := e.publish(ctx, id); err != nil {
			e.log.Warn("requeue job", "job", id, "err", err)
			continue
		}
		e.log.Info("job queued again after a restart", "job", id)
	}
}

// evaluateJob checks spec and evaluates its admission, reserving nothing. The program's
// existence is checked while the inputs are evaluated (both are store reads), and a missing
// program is the error reported first.
func (e *Engine) evaluateJob(ctx context.Context, caller party.ID, job string, spec *api.JobSpec) (*admission, error) {
	if err := spec.Validate(); err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "%v", err)
	}
	progErr := make(chan error, 1)
	go func() { progErr <- e.programExists(ctx, spec.Program) }()
	a, err := e.admit(ctx, caller, job, spec, false, nil)
	if perr := <-progErr; perr != nil {
		return nil, perr
	}
	return a, err
}

// ExplainJob evaluates admission without reserving a use, touching a key or queueing anything.
func (e *Engine) ExplainJob(ctx context.Context, caller *party.Identity, spec *api.JobSpec) (*api.Explanation, error) {
	e.rememberParty(ctx, caller)
	a, err := e.evaluateJob(ctx, caller.ID(), "explain", spec)
	if err != nil {
		return nil, err
	}
	return a.explanation(), nil
}

// Job returns a job's status; with wait, once it is final (or MaxWait or ctx ends). Only the
// submitter may see a job.
func (e *Engine) Job(ctx context.Context, caller *party.Identity, id string, wait bool) (*api.JobStatus, error) {
	if !store.ValidKey(id) {
		return nil, api.Errorf(api.ErrNotFound, "no job %q", id)
	}
	var w *jobWaiter
	if wait {
		w = e.waiter(id)
		defer e.dropWaiter(id, w)
	}
	rec, err := e.jobRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Status.Submitter != caller.ID().String() {
		return nil, api.Errorf(api.ErrNotFound, "no job %s for %s", id, caller.ID())
	}
	if !wait || rec.Status.State.Final() {
		return &rec.Status, nil
	}
	return e.await(ctx, id, w)
}

// await waits, at most MaxWait, for job id to end, with w registered before the job's record
// was last seen not final, and returns its status.
func (e *Engine) await(ctx context.Context, id string, w *jobWaiter) (*api.JobStatus, error) {
	t := time.NewTimer(e.cfg.MaxWait)
	defer t.Stop()
	select {
	case <-w.done:
		if w.final != nil {
			return w.final, nil // as finish stored it
		}
	case <-t.C:
	case <-ctx.Done():
	}
	rec, err := e.jobRecord(context.WithoutCancel(ctx), id)
	if err != nil {
		return nil, err
	}
	return &rec.Status, nil
}

func (e *Engine) jobRecord(ctx context.Context, id string) (*jobRecord, error) {
	var rec jobRecord
	if _, err := e.getJSON(ctx, store.JobRecords, id, &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, api.Errorf(api.ErrNotFound, "no job %s", id)
		}
		return nil, err
	}
	if rec.Status.ID != id {
		return nil, fmt.Errorf("%w: job record %s names %s", errTamperedState, id, rec.Status.ID)
	}
	return &rec, nil
}

// jobWaiter waits for a job's end on this node: done is closed then, and final is the job's
// status as its last write stored it (nil if that write failed).
type jobWaiter struct {
	done  chan struct{}
	final *api.JobStatus
}

// waiter registers a waiter for the end of job id.
func (e *Engine) waiter(id string) *jobWaiter {
	w := &jobWaiter{done: make(chan struct{})}
	e.mu.Lock()
	e.waiters[id] = append(e.waiters[id], w)
	e.mu.Unlock()
	return w
}

func (e *Engine) dropWaiter(id string, w *jobWaiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	list := e.waiters[id]
	for i, c := range list {
		if c == w {
			e.waiters[id] = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(e.waiters[id]) == 0 {
		delete(e.waiters, id)
	}
}

// notify wakes everyone waiting for job id with its final status (nil: read the record).
func (e *Engine) notify(id string, final *api.JobStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.waiters[id] {
		w.final = final // read only, by every waiter
		close(w.done)
	}
	delete(e.waiters, id)
}
