package sandbox

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

// signalHost tells when the guest logs: the guest is then running inside a call.
type signalHost struct {
	*memHost
	running chan struct{}
}

func (h signalHost) Log(p []byte) {
	h.memHost.Log(p)
	select {
	case h.running <- struct{}{}:
	default:
	}
}

// TestRuntimeCloseDuringQueries closes a runtime while warm instances run queries that
// keep writing their memory. wazero closes a module's resources (its memory included) on
// the goroutine that closes it, under a guest still running on another: Close must end the
// queries first. They fail with ErrClosed, later queries too, and every reservation is
// unmapped.
func TestRuntimeCloseDuringQueries(t *testing.T) {
	ctx := context.Background()
	before := settledRegions(t)
	r, err := New(ctx, Config{MemoryLimit: 64 << 20, Timeout: 2 * time.Minute, Cache: testCache})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Compile(ctx, build(t, "sandbox/testdata/hostile", true))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	running := make(chan struct{}, n)
	var ins []*Instance
	for range n {
		in, err := r.Warm(ctx, p, signalHost{newHost(nil, nil), running})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	errs := make(chan error, n)
	for _, in := range ins {
		go func() {
			_, err := in.Query(ctx, []byte("churn"))
			errs <- err
		}()
	}
	for range n {
		<-running
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("a query running when its runtime closed: %v, want ErrClosed", err)
		}
	}
	if _, err := r.Warm(ctx, p, newHost(nil, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("warming on a closed runtime: %v, want ErrClosed", err)
	}
	for _, in := range ins {
		if _, err := in.Query(ctx, []byte("echo")); !errors.Is(err, ErrClosed) {
			t.Fatalf("a query to an instance of a closed runtime: %v, want ErrClosed", err)
		}
		in.Close(ctx)
	}
	if live := settledRegions(t); live != before {
		t.Fatalf("%d linear memories still mapped", live-before)
	}
}

// TestMemoryUnmapped checks that every way a run or an instance ends unmaps its memory:
// success, a memory bomb, a timed-out query (wazero closes the module without freeing its
// memory), a closed instance and a runtime closed with an idle instance.
func TestMemoryUnmapped(t *testing.T) {
	ctx := context.Background()
	before := settledRegions(t)
	short := newRuntime(t, Config{MemoryLimit: 32 << 20, Timeout: time.Second})
	long := newRuntime(t, Config{MemoryLimit: 32 << 20, Timeout: 2 * time.Minute})
	mustStillServe(t, long)
	h := newHost(nil, nil)
	h.params = []byte("membomb")
	if _, err := long.Run(ctx, hostile(t), h); !errors.Is(err, ErrMemory) {
		t.Fatalf("membomb: %v", err)
	}
	wasm := build(t, "sandbox/testdata/hostile", true)
	for _, c := range []struct {
		r     *Runtime
		query string
		want  error
	}{{short, "loop", ErrTimeout}, {long, "echo", nil}} {
		p, err := c.r.Compile(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		in, err := c.r.Warm(ctx, p, newHost(nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.Query(ctx, []byte(c.query)); !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.query, err, c.want)
		}
		in.Close(ctx)
	}
	idle := newRuntime(t, Config{})
	p, err := idle.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Warm(ctx, p, newHost(nil, nil)); err != nil {
		t.Fatal(err)
	}
	if live := settledRegions(t); canReserve && live != before+1 {
		t.Fatalf("%d linear memories mapped with one idle instance", live-before)
	}
	idle.Close(ctx)
	if live := settledRegions(t); live != before {
		t.Fatalf("%d linear memories still mapped", live-before)
	}
}

// TestMemoryFreeWaitsForCalls: wazero may free a memory while a call still uses it (a
// module closed when its context ended frees its resources at the guest's next check); the
// region must stay mapped until the call has left.
func TestMemoryFreeWaitsForCalls(t *testing.T) {
	if !canReserve {
		t.Skip("no reserved memory on this platform")
	}
	before := settledRegions(t)
	m := newMemory(slog.New(slog.DiscardHandler)) // entered, as for an instantiation
	lm := m.Allocate(0, 1<<20)
	b := lm.Reallocate(2 * wasmPage)
	if len(b) != 2*wasmPage || liveRegions.Load() != before+1 {
		t.Fatalf("reallocate: %d bytes, %d regions", len(b), liveRegions.Load()-before)
	}
	if lm.Reallocate(4<<20) != nil {
		t.Fatal("grew past the maximum")
	}
	lm.Free()
	b[len(b)-1] = 1 // a fault here would crash the process
	if m.enter() {
		t.Fatal("a call entered a freed memory")
	}
	if liveRegions.Load() != before+1 {
		t.Fatal("unmapped under a call")
	}
	m.leave()
	if settledRegions(t) != before {
		t.Fatal("not unmapped once idle")
	}
}

// settledRegions waits for the unmappings under way to finish and returns liveRegions.
func settledRegions(t *testing.T) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for unmapping.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d regions still being unmapped after 10 s", unmapping.Load())
		}
		time.Sleep(time.Millisecond)
	}
	return liveRegions.Load()
}
