package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestJobQueueLifecycle(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	q := s.Jobs()
	seq, err := q.Publish(ctx, "job-a", []byte("spec-a"))
	if err != nil {
		t.Fatal(err)
	}
	if dup, err := q.Publish(ctx, "job-a", []byte("spec-a")); err != nil || dup != seq {
		t.Fatalf("duplicate publish = %d, %v; want deduplicated to %d", dup, err, seq)
	}
	if _, err := q.Publish(ctx, "job-b", []byte("spec-b")); err != nil {
		t.Fatal(err)
	}

	jobs, err := q.Fetch(ctx, 10, 300*time.Millisecond)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("Fetch = %d jobs, %v; want 2", len(jobs), err)
	}
	a, b := jobs[0], jobs[1]
	if a.ID != "job-a" || string(a.Spec) != "spec-a" || a.Delivered != 1 || a.Seq != seq {
		t.Fatalf("first job = %+v", a)
	}
	if err := a.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.InProgress(); err != nil {
		t.Fatal(err)
	}
	if err := b.Nak(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	again := fetchOne(t, q)
	if again.ID != "job-b" || again.Delivered != 2 {
		t.Fatalf("redelivered job = %+v", again)
	}
	if err := again.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs, err := q.Fetch(ctx, 1, 100*time.Millisecond); err != nil || len(jobs) != 0 {
		t.Fatalf("queue not empty after acks: %d jobs, %v", len(jobs), err)
	}
}

func TestJobMaxDeliver(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	s, err := Open(ctx, Config{Dir: filepath.Join(t.TempDir(), "s"), Key: GenerateKey(), JobMaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := s.Jobs()
	if _, err := q.Publish(ctx, "job-x", nil); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		j := fetchOne(t, q)
		if j.Delivered != want {
			t.Fatalf("delivery %d reported as %d", want, j.Delivered)
		}
		if err := j.Nak(0); err != nil {
			t.Fatal(err)
		}
	}
	if jobs, _ := q.Fetch(ctx, 1, 200*time.Millisecond); len(jobs) != 0 {
		t.Fatalf("job delivered %d times, past MaxDeliver 2", jobs[0].Delivered)
	}
}

func TestJobTermAndLimits(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	q := s.Jobs()
	if _, err := q.Publish(ctx, "bad id", nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad id: %v", err)
	}
	if _, err := q.Publish(ctx, "big", make([]byte, MaxJobSpec+1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized spec: %v", err)
	}
	if _, err := q.Fetch(ctx, 0, time.Second); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Fetch 0: %v", err)
	}
	if _, err := q.Publish(ctx, "job-t", nil); err != nil {
		t.Fatal(err)
	}
	if err := fetchOne(t, q).Term("program rejected"); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := q.Fetch(ctx, 1, 200*time.Millisecond); len(jobs) != 0 {
		t.Fatal("terminated job delivered again")
	}
}

func TestFetchHonoursContext(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	// A one-hour wait must end when the context does.
	if _, err := s.Jobs().Fetch(ctx, 1, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch after cancel: %v, want context.Canceled", err)
	}
	jobs, err := s.Jobs().Fetch(testCtx(t), 1, 50*time.Millisecond)
	if err != nil || len(jobs) != 0 {
		t.Fatalf("empty Fetch = %d jobs, %v; want none, no error", len(jobs), err)
	}
}

// fetchOne waits (bounded) for the next job.
func fetchOne(t *testing.T, q *Queue) *Job {
	t.Helper()
	ctx := testCtx(t)
	for range 50 {
		jobs, err := q.Fetch(ctx, 1, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 1 {
			return jobs[0]
		}
	}
	t.Fatal("no job delivered within 10 s")
	return nil
}
