package store

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestWatchChanges: a watch reports puts, deletes and purges of the buckets it watches, made
// through another connection too (as another node would), and nothing of other buckets.
func TestWatchChanges(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	if _, err := s.Put(ctx, Pads, "before", []byte("x")); err != nil {
		t.Fatal(err)
	}
	changes := make(chan Bucket, 16)
	if err := s.WatchChanges(ctx, func(b Bucket) { changes <- b }, Revocations, Meta); err != nil {
		t.Fatal(err)
	}
	next := func(what string) Bucket {
		t.Helper()
		select {
		case b := <-changes:
			return b
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no change reported in 10 s", what)
			return ""
		}
	}
	if _, err := s.Put(ctx, Pads, "unwatched", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Revocations, "p", []byte("revoked")); err != nil {
		t.Fatal(err)
	}
	if b := next("create"); b != Revocations {
		t.Fatalf("change reported for %s, want %s (the unwatched put came first)", b, Revocations)
	}
	if _, err := s.Put(ctx, Meta, "m", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, Meta, "m"); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"put", "delete"} {
		if b := next(what); b != Meta {
			t.Fatalf("%s: change reported for %s, want %s", what, b, Meta)
		}
	}
	// Another connection to the same server: another node's write.
	nc, err := nats.Connect("", nats.InProcessServer(s.srv))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	other, err := js.KeyValue(ctx, string(Revocations))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Create(ctx, "q", []byte("revoked elsewhere")); err != nil {
		t.Fatal(err)
	}
	if b := next("write from elsewhere"); b != Revocations {
		t.Fatalf("change reported for %s", b)
	}
	cancel()
	select {
	case b := <-changes:
		t.Fatalf("a change of %s reported with nothing written", b)
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.WatchChanges(context.Background(), func(Bucket) {}, Bucket("nope")); err == nil {
		t.Error("watching an unknown bucket succeeded")
	}
}
