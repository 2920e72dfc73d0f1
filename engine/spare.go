package engine

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/styx-tee/styx/sandbox"
)

// A spare is a guest started before any job asked for it: the next job of its program gets a
// guest that has already been instantiated and run its runtime's start (milliseconds for a Go
// guest) instead of starting one on the job's path, where it takes CPU from the admission on a
// small machine.
//
// A spare is started once a job of a compiled program ends, for the next job of the same
// program, one per program and at most one per worker. Its host (lateHost) gives it nothing
// until a job takes it: it knows no job, no input, no parameter, and what it may have
// computed meanwhile it computed from nothing, as a guest started for the job would have
// (the sandbox gives every guest the same fake clock and random source). Its log lines
// before then go to the job that takes it, as a fresh guest's would. A spare no job took
// within bootWait is stopped, so that the wall-time limit of the job that takes one still
// counts from at most bootWait before the job, as for a guest booted ahead (boot.go).
type spare struct {
	prog   string // the program's sha256, hex
	ctx    context.Context
	cancel context.CancelCauseFunc
	host   *lateHost
	ran    chan error // the run's outcome, once it ends
	timer  *time.Timer
}

var errSpareUnused = errors.New("no job took the spare guest in time")

// maxSpares bounds the spares of an engine: one per worker.
func (e *Engine) maxSpares() int { return e.cfg.Workers }

// startSpare starts a spare guest of program sha, unless one is there already, the program
// is not compiled, spares are off or the engine is closing.
func (e *Engine) startSpare(sha string) {
	if e.cfg.NoSpares {
		return
	}
	prog := e.cachedProgram(sha) // cached programs stay compiled: none to close
	if prog == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.spares[sha] != nil || len(e.spares) >= e.maxSpares() || e.runCtx == nil || e.runCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancelCause(e.runCtx)
	s := &spare{prog: sha, ctx: ctx, cancel: cancel, host: newLateHost(ctx), ran: make(chan error, 1)}
	e.spares[sha] = s
	s.timer = time.AfterFunc(e.bootWait, func() { e.dropSpare(s, errSpareUnused) })
	e.wg.Go(func() {
		_, err := e.sb.RunProgram(ctx, prog, s.host)
		s.ran <- err
	})
	e.at("spare started")
}

// takeSpare hands the spare of program sha, if there is one, to a job: host is the job's,
// built on the spare's context and cancel (newHost).
func (e *Engine) takeSpare(sha string, newHost func(context.Context, context.CancelCauseFunc) *jobHost) *boot {
	e.mu.Lock()
	s := e.spares[sha]
	if s != nil { // not dropped: dropSpare finds it taken
		delete(e.spares, sha)
		s.timer.Stop()
	}
	e.mu.Unlock()
	if s == nil {
		return nil
	}
	h := newHost(s.ctx, s.cancel)
	s.host.bind(h)
	e.at("spare taken")
	return &boot{ctx: s.ctx, cancel: s.cancel, host: h, ran: s.ran}
}

// dropSpare stops s unless a job took it.
func (e *Engine) dropSpare(s *spare, cause error) {
	e.mu.Lock()
	if e.spares[s.prog] != s {
		e.mu.Unlock()
		return
	}
	delete(e.spares, s.prog)
	e.mu.Unlock()
	s.timer.Stop()
	s.cancel(cause)
	e.at("spare dropped")
}

// Settle waits until every worker waits for a job and every spare guest has reached its
// first host call (or ended), or ctx ends: a benchmark calls it between the figures it times,
// so that none of them runs alongside the end of a job before it.
func (e *Engine) Settle(ctx context.Context) error {
	for {
		pending := false
		e.spareAfter.Range(func(any, any) bool { pending = true; return false })
		e.mu.Lock()
		var waits []<-chan struct{}
		for _, s := range e.spares {
			waits = append(waits, s.host.asked, s.ctx.Done())
		}
		started := e.runCtx != nil
		e.mu.Unlock()
		for i := 0; i < len(waits); i += 2 {
			select {
			case <-waits[i]:
			case <-waits[i+1]:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !pending && (!started || int(e.idle.Load()) >= e.cfg.Workers) {
			return nil
		}
		select {
		case <-time.After(100 * time.Microsecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lateHost is the host of a spare guest: every call waits until a job takes the spare (bind)
// and then goes to that job's host. If the spare is stopped first, the guest gets nothing.
type lateHost struct {
	ctx       context.Context
	asked     chan struct{} // closed at the guest's first call
	askedOnce sync.Once
	bound     chan struct{} // closed once h is set
	h         *jobHost

	mu      sync.Mutex
	pending []byte // log lines before bind (the sandbox caps a guest's log)
}

func newLateHost(ctx context.Context) *lateHost {
	return &lateHost{ctx: ctx, asked: make(chan struct{}), bound: make(chan struct{})}
}

// bind gives the guest to job host h, with the log lines it wrote so far.
func (l *lateHost) bind(h *jobHost) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.h = h
	if len(l.pending) > 0 {
		h.Log(l.pending)
		l.pending = nil
	}
	close(l.bound)
}

// job waits for bind and returns the job's host, or nil if the spare was stopped first.
func (l *lateHost) job() *jobHost {
	l.askedOnce.Do(func() { close(l.asked) })
	select {
	case <-l.bound:
		return l.h
	case <-l.ctx.Done():
		return nil
	}
}

var errNoJob = errors.New("the guest was stopped before a job took it")

func (l *lateHost) Inputs() []sandbox.Input {
	if h := l.job(); h != nil {
		return h.Inputs()
	}
	return nil
}

func (l *lateHost) Params() []byte {
	if h := l.job(); h != nil {
		return h.Params()
	}
	return nil
}

func (l *lateHost) Open(name string) (io.Reader, error) {
	if h := l.job(); h != nil {
		return h.Open(name)
	}
	return nil, errNoJob
}

func (l *lateHost) Create(name string, kind sandbox.Kind) (io.WriteCloser, error) {
	if h := l.job(); h != nil {
		return h.Create(name, kind)
	}
	return nil, errNoJob
}

// Log does not wait: a line written before bind is kept for the job.
func (l *lateHost) Log(p []byte) {
	l.mu.Lock()
	if l.h == nil {
		l.pending = append(l.pending, p...)
		l.mu.Unlock()
		return
	}
	h := l.h
	l.mu.Unlock()
	h.Log(p)
}
