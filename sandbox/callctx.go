package sandbox

import (
	"context"
	"sync"
	"time"
)

// callCtx is the context of every call into one warm instance, made once for its life
// instead of a context, a timer and a cancel chain per query. wazero (WithCloseOnContextDone)
// stops the guest when Done is closed; the instance's one timer, re-armed per call, closes it
// at the call's deadline, and so do the caller's cancellation and the runtime's Close. A
// closed Done never reopens: the stop kills the instance, as a timeout always did.
type callCtx struct {
	st      *run
	timeout time.Duration
	done    chan struct{}
	timer   *time.Timer

	mu       sync.Mutex
	parent   context.Context // the current call's context (its values; its cancellation stops the call)
	running  bool
	deadline time.Time // of the current call
	err      error     // context.DeadlineExceeded or context.Canceled once stopped
	cause    error     // ErrTimeout, ErrCanceled or ErrClosed once stopped
}

func newCallCtx(st *run, timeout time.Duration) *callCtx {
	return &callCtx{st: st, timeout: timeout, done: make(chan struct{}), parent: context.Background()}
}

func (c *callCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *callCtx) Done() <-chan struct{}       { return c.done }

func (c *callCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value serves the run state to host functions and everything else from the call's context.
// Only the goroutine running the call reads it.
func (c *callCtx) Value(key any) any {
	if key == (runKey{}) {
		return c.st
	}
	return c.parent.Value(key)
}

// start begins a call under parent: the deadline is armed, and parent's cancellation or the
// runtime's end (done) stops the call. Call the returned function once the call returned.
func (c *callCtx) start(parent, runtimeDone context.Context) (end func() bool) {
	c.mu.Lock()
	c.parent, c.running = parent, true
	c.deadline = time.Now().Add(c.timeout)
	if c.timer == nil {
		c.timer = time.AfterFunc(c.timeout, c.expire)
	} else {
		c.timer.Reset(c.timeout)
	}
	c.mu.Unlock()
	var stopCancel func() bool
	if parent.Done() != nil {
		stopCancel = context.AfterFunc(parent, c.canceled)
	}
	if runtimeDone.Err() != nil { // closed before the call began: Close's own stop found it idle
		c.stop(context.Canceled, ErrClosed)
	}
	return func() bool {
		c.mu.Lock()
		c.running = false
		c.mu.Unlock()
		c.timer.Stop()
		if stopCancel != nil {
			stopCancel()
		}
		return c.stopped()
	}
}

// expire stops the current call once it passed its deadline; a late firing armed for an
// earlier call finds the deadline of the current one ahead and does nothing.
func (c *callCtx) expire() {
	c.mu.Lock()
	late := c.running && !time.Now().Before(c.deadline)
	c.mu.Unlock()
	if late {
		c.stop(context.DeadlineExceeded, ErrTimeout)
	}
}

// canceled stops the current call if its context ended (a late call for an earlier call's
// context finds the current one alive and does nothing).
func (c *callCtx) canceled() {
	c.mu.Lock()
	gone := c.running && c.parent.Err() != nil
	c.mu.Unlock()
	if gone {
		c.stop(context.Canceled, ErrCanceled)
	}
}

// closed stops the current call because the runtime is closing.
func (c *callCtx) closed() {
	c.mu.Lock()
	running := c.running
	c.mu.Unlock()
	if running {
		c.stop(context.Canceled, ErrClosed)
	}
}

func (c *callCtx) stop(err, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err, c.cause = err, cause
	close(c.done)
}

func (c *callCtx) stopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// stopError is the error of a call that was stopped.
func (c *callCtx) stopError(op string) *RunError {
	c.mu.Lock()
	cause, parent := c.cause, c.parent
	c.mu.Unlock()
	switch cause {
	case ErrClosed:
		return &RunError{Err: ErrClosed, Op: op, Detail: "the runtime was closed"}
	case ErrCanceled:
		detail := context.Canceled.Error()
		if err := parent.Err(); err != nil {
			detail = err.Error()
		}
		return &RunError{Err: ErrCanceled, Op: op, Detail: detail}
	}
	return &RunError{Err: ErrTimeout, Op: op, Detail: "limit " + c.timeout.String()}
}
