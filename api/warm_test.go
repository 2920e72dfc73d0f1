package api

import (
	"sync"
	"sync/atomic"
	"testing"
)

// run returns once f has run, whether a warm goroutine or the caller ran it; more callers than
// warm goroutines all get their f run; a panic comes back to the caller.
func TestWarmStacksRun(t *testing.T) {
	ws := newWarmStacks()
	var ran atomic.Int64
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 3 * maxWarm {
		wg.Go(func() {
			ws.run(func() {
				<-release
				ran.Add(1)
			})
		})
	}
	close(release)
	wg.Wait()
	if got := ran.Load(); got != 3*maxWarm {
		t.Fatalf("%d of %d functions ran", got, 3*maxWarm)
	}
	ws.mu.Lock()
	n := ws.n
	ws.mu.Unlock()
	if n < 1 || n > maxWarm {
		t.Fatalf("%d warm goroutines, want 1 to %d", n, maxWarm)
	}
	x := 0
	ws.run(func() { x = 42 })
	if x != 42 {
		t.Fatal("run returned before f did")
	}
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v, want the panic of f", v)
		}
	}()
	ws.run(func() { panic("boom") })
	t.Fatal("a panic in f did not reach the caller")
}
