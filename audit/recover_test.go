package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// fileSize returns the size of a file in dir.
func fileSize(t *testing.T, dir, name string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func truncateFile(t *testing.T, dir, name string, size int64) {
	t.Helper()
	if err := os.Truncate(filepath.Join(dir, name), size); err != nil {
		t.Fatal(err)
	}
}

// verifyAll checks that every record verifies under a fresh head and that the head extends old.
func verifyAll(t *testing.T, l *Log, old *SignedHead) *SignedHead {
	t.Helper()
	head, err := l.SignHead(context.Background())
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
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if old != nil {
		p, err := l.ProveConsistency(old.Size, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyConsistency(old, head, p); err != nil {
			t.Fatal(err)
		}
	}
	return head
}

// TestTornTailTruncated simulates a crash in the middle of an unacknowledged append, cutting its
// frame at every header byte and at many record bytes: the records file holds part of the frame,
// the hashes file none of its hashes.
func TestTornTailTruncated(t *testing.T) {
	base := t.TempDir()
	l := openTestLog(t, base)
	appendN(t, l, 0, 9)
	head9, _ := l.SignHead(context.Background())
	recEnd, hashEnd := fileSize(t, base, recordsFile), fileSize(t, base, hashesFile)
	appendN(t, l, 9, 1)
	full := fileSize(t, base, recordsFile)
	l.Close()
	src, _ := os.ReadFile(filepath.Join(base, recordsFile))
	hashes, _ := os.ReadFile(filepath.Join(base, hashesFile))
	head, _ := os.ReadFile(filepath.Join(base, headFile))

	for cut := recEnd + 1; cut < full; cut = nextCut(cut, recEnd, full) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, recordsFile), src[:cut], 0o600)
		os.WriteFile(filepath.Join(dir, hashesFile), hashes[:hashEnd], 0o600)
		os.WriteFile(filepath.Join(dir, headFile), head, 0o600)
		l, err := Open(dir, testOptions(testKey("cluster")))
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		if l.Size() != 9 {
			t.Fatalf("cut at %d: size %d, want 9", cut, l.Size())
		}
		if got := fileSize(t, dir, recordsFile); got != recEnd {
			t.Fatalf("cut at %d: records file %d bytes after repair, want %d", cut, got, recEnd)
		}
		appendN(t, l, 9, 2) // the log keeps working after the repair
		verifyAll(t, l, head9)
		l.Close()
	}
}

// nextCut steps one byte through the frame header, then in strides through the record.
// The last cut is always one byte short of the full frame.
func nextCut(cut, start, full int64) int64 {
	switch {
	case cut < start+frameHeader+2 || cut == full-1:
		return cut + 1
	case cut+7 >= full:
		return full - 1
	}
	return cut + 7
}

// TestTornHashes: the crash hit after the records sync, while the hashes were
// being written. The record is complete; its hashes are rebuilt.
func TestTornHashes(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	appendN(t, l, 0, 16)
	head, _ := l.SignHead(context.Background())
	appendN(t, l, 16, 1) // record 16 completes a subtree of 16: several hashes
	l.Close()
	for _, cut := range []int64{tlog.StoredHashCount(16)*32 + 5, tlog.StoredHashCount(16)*32 + 32, tlog.StoredHashCount(17)*32 - 1} {
		truncateFile(t, dir, hashesFile, cut)
		l = openTestLog(t, dir)
		if l.Size() != 17 {
			t.Fatalf("size %d, want 17", l.Size())
		}
		if got := fileSize(t, dir, hashesFile); got != tlog.StoredHashCount(17)*32 {
			t.Fatalf("hashes file %d bytes, want %d", got, tlog.StoredHashCount(17)*32)
		}
		verifyAll(t, l, head)
		l.Close()
	}
}

func TestGarbageAfterLastFrameTruncated(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	appendN(t, l, 0, 5)
	head, _ := l.SignHead(context.Background())
	l.Close()
	f, _ := os.OpenFile(filepath.Join(dir, recordsFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0, 0, 0, 40, 1, 2, 3, 4, 'x', 'y'}) // a frame header promising 40 bytes, then 2
	f.Close()
	l = openTestLog(t, dir)
	if l.Size() != 5 {
		t.Fatalf("size %d, want 5", l.Size())
	}
	verifyAll(t, l, head)
}

func TestOversizedFrameLengthIsTornTail(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	appendN(t, l, 0, 3)
	l.Close()
	f, _ := os.OpenFile(filepath.Join(dir, recordsFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Close()
	l = openTestLog(t, dir)
	if l.Size() != 3 {
		t.Fatalf("size %d, want 3", l.Size())
	}
}

func TestDamagedAcknowledgedRecordRefused(t *testing.T) {
	for _, which := range []string{"middle", "last"} {
		t.Run(which, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir)
			es := appendN(t, l, 0, 8)
			l.Close()
			s, _ := os.ReadFile(filepath.Join(dir, recordsFile))
			// Find the record's bytes and flip one inside it.
			target := es[3].Record
			if which == "last" {
				target = es[7].Record
			}
			i := indexOf(s, target)
			s[i+len(target)/2] ^= 0x20
			os.WriteFile(filepath.Join(dir, recordsFile), s, 0o600)
			if l, err := Open(dir, testOptions(testKey("cluster"))); !errors.Is(err, ErrCorrupt) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("damaged acknowledged record: %v, want ErrCorrupt", err)
			}
		})
	}
}

func indexOf(s, sub []byte) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if string(s[i:i+len(sub)]) == string(sub) {
			return i
		}
	}
	panic("not found")
}

func TestRecordsLostUnderSignedHeadRefused(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	es := appendN(t, l, 0, 10)
	if _, err := l.SignHead(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Remove the last three records and their hashes, as a careless (or hostile) operator might.
	s, _ := os.ReadFile(filepath.Join(dir, recordsFile))
	truncateFile(t, dir, recordsFile, int64(indexOf(s, es[7].Record)-frameHeader))
	truncateFile(t, dir, hashesFile, tlog.StoredHashCount(7)*32)
	if _, err := Open(dir, testOptions(testKey("cluster"))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("records lost under a signed head: %v, want ErrCorrupt", err)
	}
}

func TestRecordRewrittenUnderSignedHeadRefused(t *testing.T) {
	// An operator rewrites a record with a valid CRC and deletes the hashes: the rebuilt tree no
	// longer matches the signed head.
	dir := t.TempDir()
	l := openTestLog(t, dir)
	es := appendN(t, l, 0, 6)
	l.SignHead(context.Background())
	l.Close()
	s, _ := os.ReadFile(filepath.Join(dir, recordsFile))
	i := indexOf(s, es[2].Record)
	forged := append([]byte(nil), es[2].Record...)
	forged[indexOf(forged, []byte("job-2"))+4] = '9'
	out := append(append(append([]byte(nil), s[:i-frameHeader]...), appendFrame(nil, forged)...), s[i+len(forged):]...)
	os.WriteFile(filepath.Join(dir, recordsFile), out, 0o600)
	os.Remove(filepath.Join(dir, hashesFile))
	if _, err := Open(dir, testOptions(testKey("cluster"))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("rewritten record: %v, want ErrCorrupt", err)
	}
}

func TestHashesRebuiltFromRecords(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	appendN(t, l, 0, 21)
	head, _ := l.SignHead(context.Background())
	l.Close()
	// A damaged stored hash and, separately, a missing hashes file are both rebuilt.
	h, _ := os.ReadFile(filepath.Join(dir, hashesFile))
	h[10*32+1] ^= 1
	os.WriteFile(filepath.Join(dir, hashesFile), h, 0o600)
	l = openTestLog(t, dir)
	head = verifyAll(t, l, head)
	l.Close()
	os.Remove(filepath.Join(dir, hashesFile))
	l = openTestLog(t, dir)
	verifyAll(t, l, head)
}

func TestBadMagicRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, recordsFile), []byte("something else entirely\n"), 0o600)
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("foreign records file: %v, want ErrCorrupt", err)
	}
}

func TestTornMagicRestarted(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, recordsFile), recordsMagic[:5], 0o600)
	l := openTestLog(t, dir)
	appendN(t, l, 0, 2)
	verifyAll(t, l, nil)
}

func TestReadDetectsLaterDamage(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir)
	es := appendN(t, l, 0, 3)
	f, _ := os.OpenFile(filepath.Join(dir, recordsFile), os.O_RDWR, 0)
	s, _ := os.ReadFile(filepath.Join(dir, recordsFile))
	f.WriteAt([]byte{'Z'}, int64(indexOf(s, es[1].Record)+10))
	f.Close()
	if _, err := l.Read(1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a record damaged after open: %v, want ErrCorrupt", err)
	}
}
