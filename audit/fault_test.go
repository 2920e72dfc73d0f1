package audit

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// failingStorage is a real FileStorage whose appends start failing on demand, as a full disk or
// an I/O error would make them.
type failingStorage struct {
	*FileStorage
	fail atomic.Bool
}

var errDiskFull = errors.New("disk full")

func (f *failingStorage) Append(records [][]byte, hashes []tlog.Hash) error {
	if f.fail.Load() {
		return errDiskFull
	}
	return f.FileStorage.Append(records, hashes)
}

func TestFailedAppendStopsTheLog(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStorage(dir, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := &failingStorage{FileStorage: fs}
	l, err := New(st, testOptions(testKey("cluster")))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 4)
	st.fail.Store(true)
	if _, err := l.Append(context.Background(), testEvent(4)); !errors.Is(err, errDiskFull) {
		t.Fatalf("append on a failing disk: %v", err)
	}
	st.fail.Store(false)
	if _, err := l.Append(context.Background(), testEvent(5)); !errors.Is(err, errDiskFull) {
		t.Fatalf("append after a failure: %v, want the log to stay failed", err)
	}
	if l.Size() != 4 {
		t.Fatalf("size %d after failed appends, want 4", l.Size())
	}
	l.Close()
	l = openTestLog(t, dir)
	appendN(t, l, 4, 2)
	verifyAll(t, l, nil)
}
