package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestAuditAppendRead(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	a := s.Audit()
	if last, err := a.Last(ctx); err != nil || last != 0 {
		t.Fatalf("empty Last = %d, %v", last, err)
	}
	for i := 1; i <= 5; i++ {
		seq, err := a.Append(ctx, fmt.Appendf(nil, "e%d", i))
		if err != nil || seq != uint64(i) {
			t.Fatalf("Append %d = %d, %v", i, seq, err)
		}
	}
	if last, _ := a.Last(ctx); last != 5 {
		t.Fatalf("Last = %d", last)
	}
	ev, err := a.Read(ctx, 3, 2)
	if err != nil || len(ev) != 2 || ev[0].Seq != 3 || string(ev[1].Data) != "e4" || ev[0].Time.IsZero() {
		t.Fatalf("Read(3, 2) = %+v, %v", ev, err)
	}
	if ev, _ := a.Read(ctx, 0, 100); len(ev) != 5 {
		t.Fatalf("Read(0) returned %d events", len(ev))
	}
	if ev, _ := a.Read(ctx, 6, 100); len(ev) != 0 {
		t.Fatalf("Read past end returned %d events", len(ev))
	}
	if _, err := a.Append(ctx, make([]byte, MaxAuditEvent+1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized event: %v", err)
	}
}

// TestAuditIsAppendOnly checks the server itself refuses to delete or purge
// audit events, even when asked directly through the JetStream API.
func TestAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if _, err := s.Audit().Append(ctx, []byte("e")); err != nil {
		t.Fatal(err)
	}
	stream := s.Audit().stream
	if err := stream.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("audit event deleted")
	}
	if err := stream.Purge(ctx); err == nil {
		t.Fatal("audit stream purged")
	}
	if ev, _ := s.Audit().Read(ctx, 1, 10); len(ev) != 1 {
		t.Fatal("audit event lost")
	}
}

// TestCountersAreServerProtected checks the counter stream refuses deletes
// and purges at the JetStream level too.
func TestCountersAreServerProtected(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if _, err := s.Reserve(ctx, "c", 2, 10); err != nil {
		t.Fatal(err)
	}
	stream, err := s.js.Stream(ctx, "KV_"+string(Counters))
	if err != nil {
		t.Fatal(err)
	}
	seq := stream.CachedInfo().State.LastSeq
	if err := stream.DeleteMsg(ctx, seq); err == nil {
		t.Fatal("counter message deleted")
	}
	if err := stream.Purge(context.Background()); err == nil {
		t.Fatal("counter stream purged")
	}
	if err := s.kvs[Counters].Purge(ctx, "c"); err == nil {
		t.Fatal("counter rolled up by a KV purge")
	}
	if n, _ := s.Counter(ctx, "c"); n != 2 {
		t.Fatalf("counter = %d, want 2", n)
	}
}
