package demo

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress of a long wait (a build, a training job) is shown while it lasts: on a terminal
// one line redrawn in place every tick and erased at the end; elsewhere (a pipe, a log file)
// plain lines, only once the wait passed plainAfter, then when the state changes or every
// plainEvery. It goes to Options.Out, which is stderr in --json mode: stdout stays pure JSON.
const (
	tick       = 200 * time.Millisecond
	plainAfter = time.Second
	plainEvery = 5 * time.Second
)

// progress renders the state of one wait; it holds no goroutine, so it can be tested alone.
type progress struct {
	out       io.Writer
	terminal  bool
	label     string
	lastState string
	lastLine  time.Duration // elapsed time of the last plain line; -1: none yet
}

// show renders the wait after elapsed in state ("" if unknown).
func (p *progress) show(elapsed time.Duration, state string) {
	text := fmt.Sprintf("    … %s: %.1f s", p.label, elapsed.Seconds())
	if state != "" {
		text = fmt.Sprintf("    … %s: %s, %.1f s", p.label, state, elapsed.Seconds())
	}
	if p.terminal {
		fmt.Fprintf(p.out, "\r\033[K%s", text)
		return
	}
	if elapsed < plainAfter || (state == p.lastState && p.lastLine >= 0 && elapsed-p.lastLine < plainEvery) {
		return
	}
	p.lastState, p.lastLine = state, elapsed
	fmt.Fprintln(p.out, text)
}

// clear erases the in-place line.
func (p *progress) clear() {
	if p.terminal {
		fmt.Fprint(p.out, "\r\033[K")
	}
}

// watch shows the progress of a wait until the returned stop is called; state, if not nil,
// is asked for the current state at each tick (from the ticking goroutine). stop returns once
// nothing more will be written.
func (s *story) watch(label string, state func() string) (stop func()) {
	p := &progress{out: s.out, terminal: s.opts.Terminal, label: label, lastLine: -1}
	t0, quit, done := time.Now(), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-quit:
				p.clear()
				return
			case <-t.C:
				st := ""
				if state != nil {
					st = state()
				}
				p.show(time.Since(t0), st)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}
