package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendReadAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l := openTestLog(t, dir)
	want := appendN(t, l, 0, 10)
	batch := []Event{testEvent(10), testEvent(11), testEvent(12)}
	es, err := l.AppendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, es...)
	for i, e := range want {
		if e.Index != int64(i) {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
	}
	head1, err := l.SignHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head1.Size != 13 {
		t.Fatalf("head size %d, want 13", head1.Size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l2 := openTestLog(t, dir)
	if l2.Size() != 13 {
		t.Fatalf("size after reopen %d, want 13", l2.Size())
	}
	if got := l2.LatestHead(); got == nil || string(got.Note) != string(head1.Note) {
		t.Fatalf("saved head not restored: %v", got)
	}
	for _, w := range want {
		e, err := l2.Read(w.Index)
		if err != nil {
			t.Fatal(err)
		}
		if string(e.Record) != string(w.Record) {
			t.Fatalf("record %d changed across reopen:\n%s\n%s", w.Index, e.Record, w.Record)
		}
	}
	appendN(t, l2, 13, 7)
	head2, err := l2.SignHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := l2.ProveConsistency(head1.Size, head2.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyConsistency(head1, head2, proof); err != nil {
		t.Fatalf("consistency across reopen: %v", err)
	}
}

func TestSignHeadReusesHeadWhileSizeUnchanged(t *testing.T) {
	ctx := context.Background()
	l := openTestLog(t, t.TempDir())
	appendN(t, l, 0, 3)
	h1, err := l.SignHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := l.SignHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Fatal("a second head was signed for the same size")
	}
}

func TestEmptyLogHead(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	h, err := l.SignHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Size != 0 || h.Root != (tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}) {
		t.Fatalf("empty head %d %v", h.Size, h.Root)
	}
}

func TestRootMatchesIndependentComputation(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	es := appendN(t, l, 0, 37)
	h, err := l.SignHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leaves := make([]tlog.Hash, len(es))
	for i, e := range es {
		leaves[i] = tlog.RecordHash(e.Record)
	}
	if got := rfc6962Root(leaves); got != h.Root {
		t.Fatalf("root %v, RFC 6962 recomputation %v", h.Root, got)
	}
}

// rfc6962Root is the RFC 6962 Merkle tree hash, written out independently of tlog.
func rfc6962Root(leaves []tlog.Hash) tlog.Hash {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	return tlog.NodeHash(rfc6962Root(leaves[:k]), rfc6962Root(leaves[k:]))
}

func TestInclusionProofs(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	es := appendN(t, l, 0, 1)
	key := testKey("cluster")
	for n := 2; n <= 33; n++ {
		es = append(es, appendN(t, l, n-1, 1)...)
		head, err := l.SignHead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		head, err = VerifyHead(head.Note, key.Public().(ed25519.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			p, err := l.ProveInclusion(e.Index, head.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(head, e.Index, e.Record, p); err != nil {
				t.Fatalf("size %d index %d: %v", n, e.Index, err)
			}
		}
	}
	// Tampered proofs, records and indexes are refused.
	head := l.LatestHead()
	e := es[5]
	p, _ := l.ProveInclusion(e.Index, head.Size)
	tamperedProof := slices.Clone(p)
	tamperedProof[0][3] ^= 1
	cases := map[string]func() error{
		"flipped proof hash": func() error { return VerifyInclusion(head, e.Index, e.Record, tamperedProof) },
		"short proof":        func() error { return VerifyInclusion(head, e.Index, e.Record, p[1:]) },
		"long proof":         func() error { return VerifyInclusion(head, e.Index, e.Record, append(slices.Clone(p), p[0])) },
		"other record":       func() error { return VerifyInclusion(head, e.Index, es[6].Record, p) },
		"other index":        func() error { return VerifyInclusion(head, e.Index+1, e.Record, p) },
		"index beyond head":  func() error { return VerifyInclusion(head, head.Size, e.Record, p) },
		"negative index":     func() error { return VerifyInclusion(head, -1, e.Record, p) },
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: got %v, want ErrTampered", name, err)
		}
	}
	if _, err := l.ProveInclusion(head.Size, head.Size); !errors.Is(err, ErrNotFound) {
		t.Errorf("proof beyond size: %v", err)
	}
	if _, err := l.ProveInclusion(0, head.Size+1); !errors.Is(err, ErrNotFound) {
		t.Errorf("proof for a future tree: %v", err)
	}
}

func TestConsistencyProofs(t *testing.T) {
	ctx := context.Background()
	l := openTestLog(t, t.TempDir())
	var heads []*SignedHead
	for n := 1; n <= 20; n++ {
		appendN(t, l, n-1, 1)
		h, err := l.SignHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h)
	}
	for _, a := range heads {
		for _, b := range heads[a.Size-1:] {
			p, err := l.ProveConsistency(a.Size, b.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(a, b, p); err != nil {
				t.Fatalf("%d→%d: %v", a.Size, b.Size, err)
			}
			if len(p) > 0 {
				bad := slices.Clone(p)
				bad[len(bad)-1][0] ^= 0x80
				if err := VerifyConsistency(a, b, bad); !errors.Is(err, ErrFork) {
					t.Fatalf("%d→%d tampered proof: %v, want ErrFork", a.Size, b.Size, err)
				}
			}
			if a.Size < b.Size {
				if err := VerifyConsistency(b, a, p); !errors.Is(err, ErrRollback) {
					t.Fatalf("%d→%d backwards: %v, want ErrRollback", b.Size, a.Size, err)
				}
			}
		}
	}
}

func TestForkDetected(t *testing.T) {
	// Two logs under the same key and origin that diverge at record 4: a forking operator.
	ctx := context.Background()
	a, b := openTestLog(t, t.TempDir()), openTestLog(t, t.TempDir())
	appendN(t, a, 0, 5)
	appendN(t, b, 0, 4)
	appendN(t, b, 50, 1)
	ha5, _ := a.SignHead(ctx)
	appendN(t, a, 5, 3)
	appendN(t, b, 100, 3)
	ha8, _ := a.SignHead(ctx)
	hb8, _ := b.SignHead(ctx)
	if err := VerifyConsistency(ha8, hb8, nil); !errors.Is(err, ErrFork) {
		t.Fatalf("same size, different roots: %v, want ErrFork", err)
	}
	pb, _ := b.ProveConsistency(5, 8)
	if err := VerifyConsistency(ha5, hb8, pb); !errors.Is(err, ErrFork) {
		t.Fatalf("forked extension: %v, want ErrFork", err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	l := openTestLog(t, t.TempDir())
	const workers, each = 8, 25
	var wg sync.WaitGroup
	idx := make(chan int64, workers*each*2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if i%5 == 0 {
					es, err := l.AppendBatch(ctx, []Event{testEvent(w), testEvent(i)})
					if err != nil {
						t.Error(err)
						return
					}
					for _, e := range es {
						idx <- e.Index
					}
					continue
				}
				e, err := l.Append(ctx, testEvent(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				idx <- e.Index
				if i%7 == 0 {
					if _, err := l.SignHead(ctx); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(idx)
	seen := map[int64]bool{}
	for i := range idx {
		if seen[i] {
			t.Fatalf("index %d assigned twice", i)
		}
		seen[i] = true
	}
	if int64(len(seen)) != l.Size() {
		t.Fatalf("%d indexes for a log of %d", len(seen), l.Size())
	}
	head, err := l.SignHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range head.Size {
		e, err := l.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		p, err := l.ProveInclusion(i, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(head, i, e.Record, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	l := openTestLog(t, t.TempDir())
	appendN(t, l, 0, 30)
	all, next, err := l.Query(ctx, 0, 0, nil)
	if err != nil || len(all) != 30 || next != 30 {
		t.Fatalf("all: %d entries, next %d, %v", len(all), next, err)
	}
	mine, _, err := l.Query(ctx, 0, 0, TouchingAny("pad-2", "pad-103"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range mine {
		if !e.Event.Touches("pad-2") && !e.Event.Touches("pad-103") {
			t.Fatalf("entry %d touches neither: %v", e.Index, e.Event.Pads)
		}
	}
	want := 0
	for i := range 30 {
		ev := testEvent(i)
		if ev.Touches("pad-2") || ev.Touches("pad-103") {
			want++
		}
	}
	if len(mine) != want {
		t.Fatalf("%d matching entries, want %d", len(mine), want)
	}
	page, next, err := l.Query(ctx, 3, 2, TouchingAny("pad-2", "pad-103"))
	if err != nil || len(page) != 2 || page[0].Index < 3 || next != page[1].Index+1 {
		t.Fatalf("page: %v next %d err %v", page, next, err)
	}
	rest, _, err := l.Query(ctx, next, 0, TouchingAny("pad-2", "pad-103"))
	if err != nil || len(rest)+2+countBefore(mine, 3) != len(mine) {
		t.Fatalf("paging lost entries: %d + 2 + %d != %d", len(rest), countBefore(mine, 3), len(mine))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := l.Query(cctx, 0, 0, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled query: %v", err)
	}
}

func countBefore(es []Entry, i int64) int {
	n := 0
	for _, e := range es {
		if e.Index < i {
			n++
		}
	}
	return n
}

func TestAppendBatchAllOrNothing(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	appendN(t, l, 0, 2)
	bad := testEvent(3)
	bad.Pads = []string{"has space"}
	if _, err := l.AppendBatch(context.Background(), []Event{testEvent(2), bad}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("batch with a bad event: %v", err)
	}
	if l.Size() != 2 {
		t.Fatalf("size %d after a refused batch, want 2", l.Size())
	}
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	openTestLog(t, dir)
	if l, err := Open(dir, testOptions(testKey("cluster"))); err == nil {
		l.Close()
		t.Fatal("a second Open of an open log succeeded")
	}
}

func TestSignerMustMatchPublicKey(t *testing.T) {
	opts := testOptions(testKey("cluster"))
	opts.PublicKey = testKey("other").Public().(ed25519.PublicKey)
	l, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 0, 1)
	if _, err := l.SignHead(context.Background()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("mismatched signer: %v, want ErrBadSignature", err)
	}
}

func TestNoSigner(t *testing.T) {
	l, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.SignHead(context.Background()); !errors.Is(err, ErrNoSigner) {
		t.Fatalf("got %v, want ErrNoSigner", err)
	}
}

func TestSavedHeadFromOtherKeyRefused(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	appendN(t, l, 0, 3)
	if _, err := l.SignHead(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	opts := testOptions(testKey("other"))
	opts.Origin = "test.styx/audit"
	if _, err := Open(dir, opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reopen with another key: %v, want ErrCorrupt", err)
	}
}

func TestClosedLog(t *testing.T) {
	l := openTestLog(t, filepath.Join(t.TempDir(), "log"))
	l.Close()
	if _, err := l.Append(context.Background(), testEvent(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}
