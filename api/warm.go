package api

import (
	"sync"
	"time"
)

// Warm stacks. net/http serves every HTTP/2 request on a fresh goroutine whose stack starts
// small; a session query (MAC check, policy decision, sandbox call) needs more, so each query
// grew its goroutine's stack twice, copying it each time: about a tenth of a query's CPU in
// bench query. Session queries therefore run on a few long-lived goroutines whose stacks
// stay grown, the request's goroutine waiting for them. With no goroutine free (or all
// maxWarm busy) a query runs on its own goroutine as before; a goroutine idle for warmIdle
// exits. This changes where a query runs, never what it does.
const (
	maxWarm  = 64
	warmIdle = 30 * time.Second
)

type warmStacks struct {
	work chan *warmJob // unbuffered: a send succeeds only when a goroutine waits for work
	mu   sync.Mutex
	n    int // goroutines running
}

type warmJob struct {
	f     func()
	done  chan struct{}
	panic any // what f panicked with, handed back to the request's goroutine
}

func newWarmStacks() *warmStacks { return &warmStacks{work: make(chan *warmJob)} }

// run runs f on a warm goroutine, or on the calling one when none is free, and returns when
// f has returned. A panic in f is raised again on the calling goroutine.
func (ws *warmStacks) run(f func()) {
	j := &warmJob{f: f, done: make(chan struct{})}
	select {
	case ws.work <- j:
	default:
		if !ws.spawn(j) {
			f()
			return
		}
	}
	<-j.done
	if j.panic != nil {
		panic(j.panic)
	}
}

// spawn starts a goroutine for j if fewer than maxWarm run.
func (ws *warmStacks) spawn(j *warmJob) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.n >= maxWarm {
		return false
	}
	ws.n++
	go ws.loop(j)
	return true
}

func (ws *warmStacks) loop(j *warmJob) {
	defer func() {
		ws.mu.Lock()
		ws.n--
		ws.mu.Unlock()
	}()
	idle := time.NewTimer(warmIdle)
	defer idle.Stop()
	for {
		j.exec()
		idle.Reset(warmIdle)
		select {
		case j = <-ws.work:
		case <-idle.C:
			return
		}
	}
}

func (j *warmJob) exec() {
	defer close(j.done)
	defer func() { j.panic = recover() }()
	j.f()
}
