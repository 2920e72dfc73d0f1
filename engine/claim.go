package engine

import (
	"context"
	"errors"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/store"
)

// A pendingClaim is the claim of a job whose run began before the claim was durable.
//
// A worker's claim binds the job to its queue message and marks it running, in one durable
// write; until it is durable, the job may still be bound to another message. For a job this
// node recorded itself, with its guest booted ahead, the worker that gets the job's first
// delivery knows the record as it was written: the claim is written while the job's start
// decision is made and its program starts (claimAhead). The start decision still comes before
// any input reaches the program. What the claim guards is written only once it is durable: an
// output's key and blob, the derived Pads, the job's receipt, audit entries and final state all
// wait for it (jobHost.claimed). Should the claim find the job otherwise than recorded (another
// message bound to it, a store error), the program is stopped, what it captured is dropped
// unwritten, and the message is handled from the record as the claim found it (runQueued).
//
// So two workers may run the same job's program at once only if the queue delivered the job
// twice within one claim's write, and only the one whose claim holds writes anything.
type pendingClaim struct {
	assumed *jobRecord    // the record as this node wrote it: queued, bound to no message
	done    chan struct{} // closed once the claim is durable or failed
	// Set before done is closed.
	before *jobRecord // the record as the claim found it
	dup    bool
	err    error
	held   bool // the claim found the job as assumed, and bound it to the message
}

// errClaimLost is execute's error for a run whose pending claim did not hold.
var errClaimLost = errors.New("the job's claim found it bound elsewhere")

// claimAhead begins the claim of queue message j in the background if this node recorded j's
// job and booted its guest ahead, and j is the job's first delivery; it returns nil otherwise
// (the worker claims before it runs). The job's run takes the pending claim (takeClaim).
func (e *Engine) claimAhead(ctx context.Context, j *store.Job) *pendingClaim {
	if j.Delivered != 1 {
		return nil
	}
	known, rev := e.bootRecord(j.ID)
	if known == nil || known.Seq != 0 || known.Status.State != api.JobQueued {
		return nil
	}
	assumed := *known
	p := &pendingClaim{assumed: &assumed, done: make(chan struct{})}
	e.pending.Store(j.ID, p)
	go func() {
		defer close(p.done)
		e.at("claiming")
		p.before, p.dup, p.err = e.claimFrom(ctx, j.ID, j.Seq, known, rev)
		p.held = p.err == nil && !p.dup && p.before != nil && p.before.Seq == 0 && p.before.Status.State == api.JobQueued
		e.at("claim durable")
	}()
	return p
}

// takeClaim returns the pending claim of job id, if its run began before the claim was durable.
func (e *Engine) takeClaim(id string) *pendingClaim {
	if p, ok := e.pending.LoadAndDelete(id); ok {
		return p.(*pendingClaim)
	}
	return nil
}

// wait waits for the claim and reports errClaimLost if it did not hold. A nil claim holds.
func (p *pendingClaim) wait() error {
	if p == nil {
		return nil
	}
	<-p.done
	if !p.held {
		return errClaimLost
	}
	return nil
}

// stopIfLost cancels a run, with errClaimLost, as soon as its claim turns out not to hold,
// until stop is called.
func (p *pendingClaim) stopIfLost(cancel context.CancelCauseFunc) (stop func()) {
	if p == nil {
		return func() {}
	}
	ctx, done := context.WithCancel(context.Background())
	go func() {
		select {
		case <-p.done:
			if !p.held {
				cancel(errClaimLost)
			}
		case <-ctx.Done():
		}
	}()
	return done
}
