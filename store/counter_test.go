package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

func TestReserveRaceAdmitsExactlyLimit(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	const racers, limit = 64, 7
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		granted []uint64
		denied  int
	)
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			v, err := s.Reserve(ctx, "pad.p.use", 1, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted = append(granted, v)
			case errors.Is(err, ErrLimitReached):
				denied++
			default:
				t.Errorf("Reserve: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(granted)
	if want := []uint64{1, 2, 3, 4, 5, 6, 7}; !slices.Equal(granted, want) {
		t.Fatalf("granted values %v, want %v", granted, want)
	}
	if denied != racers-limit {
		t.Fatalf("denied %d, want %d", denied, racers-limit)
	}
	if n, err := s.Counter(ctx, "pad.p.use"); err != nil || n != limit {
		t.Fatalf("Counter = %d, %v; want %d", n, err, limit)
	}
}

func TestReserveLimits(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if n, err := s.Counter(ctx, "fresh"); err != nil || n != 0 {
		t.Fatalf("fresh counter = %d, %v", n, err)
	}
	if v, err := s.Reserve(ctx, "c", 3, 5); err != nil || v != 3 {
		t.Fatalf("Reserve 3 = %d, %v", v, err)
	}
	_, err := s.Reserve(ctx, "c", 3, 5)
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrLimitReached) || le.Current != 3 || le.Limit != 5 {
		t.Fatalf("over-limit Reserve: %v", err)
	}
	if v, err := s.Reserve(ctx, "c", 2, 5); err != nil || v != 5 {
		t.Fatalf("Reserve to the limit = %d, %v", v, err)
	}
	if _, err := s.Reserve(ctx, "c", 1, math.MaxUint64); err != nil {
		t.Fatalf("raising the limit later admits again: %v", err)
	}
	if _, err := s.Reserve(ctx, "c", 0, 10); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reserve 0: %v", err)
	}
	if _, err := s.Reserve(ctx, "c", math.MaxUint64, math.MaxUint64); !errors.Is(err, ErrLimitReached) {
		t.Fatalf("overflowing Reserve: %v", err)
	}
	if _, err := s.Reserve(ctx, "bad key", 1, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad key: %v", err)
	}
}

func TestAdvanceVersionRefusesRollback(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if _, _, err := s.Version(ctx, "policy.p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Version of new register: %v", err)
	}
	if err := s.AdvanceVersion(ctx, "policy.p", 1, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceVersion(ctx, "policy.p", 3, []byte("v3")); err != nil {
		t.Fatal(err)
	}
	for _, v := range []uint64{1, 2, 3} {
		err := s.AdvanceVersion(ctx, "policy.p", v, []byte("old"))
		var se *StaleError
		if !errors.As(err, &se) || !errors.Is(err, ErrStale) || se.Current != 3 || se.Presented != v {
			t.Fatalf("AdvanceVersion(%d): %v", v, err)
		}
	}
	v, val, err := s.Version(ctx, "policy.p")
	if err != nil || v != 3 || !bytes.Equal(val, []byte("v3")) {
		t.Fatalf("Version = %d, %q, %v", v, val, err)
	}
	if err := s.AdvanceVersion(ctx, "policy.p", 0, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("version 0: %v", err)
	}
	if err := s.AdvanceVersion(ctx, "policy.p", 9, make([]byte, MaxValueSize)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized value: %v", err)
	}
}

func TestAdvanceVersionRace(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for v := uint64(1); v <= 20; v++ {
		wg.Go(func() {
			err := s.AdvanceVersion(ctx, "policy.q", v, fmt.Appendf(nil, "v%d", v))
			if err != nil && !errors.Is(err, ErrStale) {
				t.Errorf("AdvanceVersion(%d): %v", v, err)
			}
		})
	}
	wg.Wait()
	v, val, err := s.Version(ctx, "policy.q")
	if err != nil || v != 20 || string(val) != "v20" {
		t.Fatalf("after race Version = %d, %q, %v; want 20, v20", v, val, err)
	}
}

func TestCorruptCounterIsReported(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	// Write a malformed counter behind the package's back, as a hostile
	// host could.
	if _, err := s.kvs[Counters].Put(ctx, "c", []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "c", 1, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Reserve on corrupt counter: %v", err)
	}
	if _, err := s.Counter(ctx, "c"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Counter on corrupt counter: %v", err)
	}
}

func TestDeletedCounterIsNotReset(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if _, err := s.Reserve(ctx, "c", 5, 5); err != nil {
		t.Fatal(err)
	}
	// A delete marker written through the raw KV API (by anyone who can
	// reach the NATS server) must not reset the counter to zero.
	if err := s.kvs[Counters].Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "c", 1, 5); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Reserve after raw delete: %v, want ErrCorrupt", err)
	}
	if _, err := s.Counter(ctx, "c"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Counter after raw delete: %v, want ErrCorrupt", err)
	}
}

// BenchmarkReserve measures one uncontended reservation, with the default
// fsync on every write and without it (the cost of SyncAlways).
func BenchmarkReserve(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		b.Run(fmt.Sprintf("noSync=%v", noSync), func(b *testing.B) {
			s, err := Open(b.Context(), Config{Dir: b.TempDir(), Key: GenerateKey(), noSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for b.Loop() {
				if _, err := s.Reserve(b.Context(), "bench", 1, math.MaxUint64); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReserveParallel measures reservations on distinct counters from
// many goroutines (one admission per Pad).
func BenchmarkReserveParallel(b *testing.B) {
	s, err := Open(b.Context(), Config{Dir: b.TempDir(), Key: GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("bench.%d", next.Add(1))
		for pb.Next() {
			if _, err := s.Reserve(b.Context(), key, 1, math.MaxUint64); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGet(b *testing.B) {
	s, err := Open(b.Context(), Config{Dir: b.TempDir(), Key: GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Put(b.Context(), Pads, "k", make([]byte, 512)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := s.Get(b.Context(), Pads, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

// Reserve starts its compare-and-set from the value it last wrote; a write by another writer
// (another node) makes that guess fail, and Reserve then reads and counts from the real value.
func TestReserveAfterAForeignWrite(t *testing.T) {
	s := openTemp(t)
	ctx := testCtx(t)
	if n, err := s.Reserve(ctx, "c.pad.use", 1, 100); err != nil || n != 1 {
		t.Fatalf("first reservation: %d, %v", n, err)
	}
	// Another node moves the counter on behind this store's back.
	if _, err := s.kvs[Counters].Put(ctx, "c.pad.use", encodeVersion(10, nil)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Reserve(ctx, "c.pad.use", 1, 100); err != nil || n != 11 {
		t.Fatalf("reservation after a foreign write: %d, %v; want 11", n, err)
	}
	if n, err := s.Reserve(ctx, "c.pad.use", 1, 11); !errors.Is(err, ErrLimitReached) || n != 0 {
		t.Fatalf("reservation past the limit: %d, %v", n, err)
	}
	if n, err := s.Counter(ctx, "c.pad.use"); err != nil || n != 11 {
		t.Fatalf("counter: %d, %v; want 11", n, err)
	}
}
