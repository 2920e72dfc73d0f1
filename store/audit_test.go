package store

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/mod/sumdb/tlog"
)

func testSeal(t *testing.T, b byte) cipher.AEAD { return sealWith(b) }

func sealWith(b byte) cipher.AEAD {
	key := make([]byte, chacha20poly1305.KeySize)
	key[0] = b
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic(err)
	}
	return a
}

func openLog(t *testing.T, s *Store, seal cipher.AEAD) *AuditLog {
	t.Helper()
	l, err := s.OpenAuditLog(testCtx(t), seal)
	if err != nil {
		t.Fatalf("OpenAuditLog: %v", err)
	}
	return l
}

// appendRecords appends records in one Append, with their stored hashes computed as package
// audit computes them.
func appendRecords(t *testing.T, l *AuditLog, records ...[]byte) error {
	t.Helper()
	return appendWithHashes(l, records...)
}

func appendWithHashes(l *AuditLog, records ...[]byte) error {
	n := l.Size()
	base := tlog.StoredHashIndex(0, n)
	var pending []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= base {
				out[i] = pending[x-base]
				continue
			}
			h, err := l.ReadHashes([]int64{x})
			if err != nil {
				return nil, err
			}
			out[i] = h[0]
		}
		return out, nil
	})
	for i, rec := range records {
		h, err := tlog.StoredHashes(n+int64(i), rec, r)
		if err != nil {
			return err
		}
		pending = append(pending, h...)
	}
	return l.Append(records, pending)
}

func treeHash(t *testing.T, l *AuditLog) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(l.Size(), tlog.HashReaderFunc(l.ReadHashes))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAuditLogSurvivesRestart: records appended one by one, in a batch and in a batch larger than
// one message come back after a restart in order, with the same tree hash, and the head too.
func TestAuditLogSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir, key := filepath.Join(t.TempDir(), "store"), GenerateKey()
	s := openAt(t, dir, key)
	l := openLog(t, s, testSeal(t, 1))
	var want [][]byte
	for i := range 5 {
		rec := fmt.Appendf(nil, "event %d", i)
		if err := appendRecords(t, l, rec); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		want = append(want, rec)
	}
	batch := [][]byte{[]byte("b0"), []byte("b1"), []byte("b2")}
	big := [][]byte{bytes.Repeat([]byte("x"), 200<<10), bytes.Repeat([]byte("y"), 200<<10), bytes.Repeat([]byte("z"), 200<<10),
		bytes.Repeat([]byte("w"), 200<<10), bytes.Repeat([]byte("v"), 200<<10)} // 1000 KiB: two messages
	for _, b := range [][][]byte{batch, big} {
		if err := appendRecords(t, l, b...); err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	if err := l.SaveHead([]byte("signed head")); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, l)
	l.Close()
	s.Close()

	s = openAt(t, dir, key)
	l = openLog(t, s, testSeal(t, 1))
	if l.Size() != int64(len(want)) {
		t.Fatalf("size after restart %d, want %d", l.Size(), len(want))
	}
	for i, w := range want {
		if got, err := l.ReadRecord(int64(i)); err != nil || !bytes.Equal(got, w) {
			t.Fatalf("record %d after restart: %d bytes, %v", i, len(got), err)
		}
	}
	if after := treeHash(t, l); after != before {
		t.Fatal("tree hash changed across a restart")
	}
	if head, err := l.LoadHead(); err != nil || string(head) != "signed head" {
		t.Fatalf("head after restart: %q, %v", head, err)
	}
	if _, err := l.ReadRecord(int64(len(want))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record past the end: %v", err)
	}
	if err := l.Append([][]byte{[]byte("r")}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("append without stored hashes: %v", err)
	}
}

// TestAuditLogRefusesTampering: the store is outside the trust boundary. A message the log did
// not write, or records sealed under another key, make opening fail instead of being believed.
func TestAuditLogRefusesTampering(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	l := openLog(t, s, testSeal(t, 1))
	if err := appendRecords(t, l, []byte("genuine")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAuditLog(ctx, testSeal(t, 2)); !errors.Is(err, ErrAuditCorrupt) {
		t.Fatalf("opened with another key: %v", err)
	}
	// The host publishes a forged record straight into the stream.
	if _, err := s.audit.js.Publish(ctx, auditSubject, []byte(auditBatchMagic+"\x00\x00\x00\x01forged")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenAuditLog(ctx, testSeal(t, 1)); !errors.Is(err, ErrAuditCorrupt) {
		t.Fatalf("opened over a forged message: %v", err)
	}
	// The open log refuses to append after a message it did not write.
	if err := appendRecords(t, l, []byte("next")); err == nil {
		t.Fatal("appended after a foreign message")
	}
}

// TestAuditIsAppendOnly checks the server itself refuses to delete or purge
// the log's messages, even when asked directly through the JetStream API.
func TestAuditIsAppendOnly(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	l := openLog(t, s, testSeal(t, 1))
	if err := appendRecords(t, l, []byte("e")); err != nil {
		t.Fatal(err)
	}
	if err := s.audit.stream.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("audit message deleted")
	}
	if err := s.audit.stream.Purge(ctx); err == nil {
		t.Fatal("audit stream purged")
	}
	if got, err := openLog(t, s, testSeal(t, 1)).ReadRecord(0); err != nil || string(got) != "e" {
		t.Fatalf("audit record lost: %q, %v", got, err)
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
