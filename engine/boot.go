package engine

import (
	"context"
	"errors"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
)

// A boot is the guest of an admitted job, started by the node that admitted it as soon as the
// job's decision allowed it, while the uses are reserved, the decision logged, the job recorded
// and queued and a worker claims it. A Go guest takes milliseconds to instantiate and reach its
// first host call, about as long as those durable writes: done one after the other, each
// would wait for the other.
//
// Until a worker of this node takes it (execute), a boot is a guest with no job: its host
// lists no input and opens nothing before the job's start decision, which runs only once the
// job is claimed (jobHost.prepare). A boot the admission ends up denying (a limit lost to
// another job), that fails to be recorded or queued, or that no worker of this node takes
// within bootWait (another node's worker claimed the job, or this node's workers are busy) is
// stopped, and what it captured is dropped; the job's worker then starts it from the
// beginning. The run's wall-time limit counts from the boot.
//
// Once the admission has reserved the job's uses, the boot is given it (admitAhead): the
// inputs' Pads are opened while the job is recorded, queued and claimed, and the start
// decision decides the admission's requests again instead of reading every chain once more,
// if nothing was stored since the admission read them. Once the job is recorded, the boot
// holds the record as written (recordAhead), and the claim writes over it without reading it.
//
// A guest the worker starts itself (execute), or a spare it takes (spare.go), is held in a
// boot too, without timer.
type boot struct {
	id     string
	ctx    context.Context
	cancel context.CancelCauseFunc
	host   *jobHost
	timer  *time.Timer
	ran    chan error // the run's outcome, once it ends

	// Set under the engine's lock, while the boot waits for its worker.
	admitted *admitted
	rec      *jobRecord // the job's record as SubmitJob wrote it, at revision rev
	rev      uint64
}

// defaultBootWait is how long a boot waits for a worker of this node to take its job.
const defaultBootWait = 2 * time.Second

var (
	errBootDropped   = errors.New("the job's admission did not complete")
	errBootUnclaimed = errors.New("no worker of this node took the job in time")
)

// bootAhead starts the guest of job id if a worker of this node is idle, a boot slot is free
// and the program is compiled already (compiling is the worker's job). It returns nil
// otherwise: the worker will start the guest itself.
func (e *Engine) bootAhead(caller *party.Identity, id string, spec *api.JobSpec) *boot {
	if e.idle.Load() <= 0 {
		return nil
	}
	prog := e.cachedProgram(spec.Program) // cached programs stay compiled: none to close
	if prog == nil {
		return nil
	}
	select {
	case e.bootSlots <- struct{}{}:
	default:
		return nil
	}
	newHost := func(ctx context.Context, cancel context.CancelCauseFunc) *jobHost {
		return e.newJobHost(ctx, cancel, caller.ID(), id, spec)
	}
	b := e.takeSpare(spec.Program, newHost) // started already, if there is one
	e.mu.Lock()
	if e.runCtx == nil || e.runCtx.Err() != nil { // not started, or closing
		e.mu.Unlock()
		<-e.bootSlots
		if b != nil {
			b.cancel(context.Canceled)
		}
		return nil
	}
	if b == nil {
		ctx, cancel := context.WithCancelCause(e.runCtx)
		b = &boot{ctx: ctx, cancel: cancel, ran: make(chan error, 1), host: newHost(ctx, cancel)}
		e.wg.Go(func() {
			_, err := e.sb.RunProgram(ctx, prog, b.host)
			b.ran <- err
		})
	}
	b.id = id
	e.boots[id] = b
	b.timer = time.AfterFunc(e.bootWait, func() { e.dropBoot(b, errBootUnclaimed) })
	e.mu.Unlock()
	e.at("booted")
	return b
}

// admitAhead gives b, if it still waits, the admission that allowed its job with its uses
// reserved; epoch is the engine's epoch read before the admission's first read, at read. The
// inputs' Pads are opened at once, in the background.
func (e *Engine) admitAhead(b *boot, a *admission, epoch uint64, read time.Time) {
	if b == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.boots[b.id] != b {
		return // dropped
	}
	p := &admitted{adm: a, epoch: epoch, read: read, done: make(chan struct{})}
	b.admitted = p
	go func() {
		defer close(p.done)
		p.opened = b.host.openInputs(a)
	}()
}

// recordAhead gives b, if it still waits, its job's record as written at revision rev.
func (e *Engine) recordAhead(b *boot, rec *jobRecord, rev uint64) {
	if b == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.boots[b.id] == b {
		r := *rec
		b.rec, b.rev = &r, rev
	}
}

// bootRecord returns the record of job id as this node wrote it, and its revision, if a boot
// for the job waits (nil otherwise).
func (e *Engine) bootRecord(id string) (*jobRecord, uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if b := e.boots[id]; b != nil && b.rec != nil {
		r := *b.rec
		return &r, b.rev
	}
	return nil, 0
}

// takeBoot hands the boot of job id, if it still waits, to the worker that claimed the job.
func (e *Engine) takeBoot(id string) *boot {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.boots[id]
	if b == nil {
		return nil
	}
	delete(e.boots, id)
	b.timer.Stop()
	<-e.bootSlots
	b.host.admitted = b.admitted
	return b
}

// dropBoot stops b unless a worker took it already, and releases what it holds once its guest
// has ended.
func (e *Engine) dropBoot(b *boot, cause error) {
	if b == nil {
		return
	}
	e.mu.Lock()
	if e.boots[b.id] != b {
		e.mu.Unlock()
		return // taken
	}
	delete(e.boots, b.id)
	admitted := b.admitted
	e.mu.Unlock()
	b.timer.Stop()
	b.cancel(cause)
	e.at("boot dropped")
	go func() {
		<-b.ran // the start decision never ran: nothing reached the guest
		admitted.close()
		<-e.bootSlots
	}()
}
