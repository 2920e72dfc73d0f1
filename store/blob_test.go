package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openDisk(t *testing.T, maxSize int64) (*Disk, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blobs")
	d, err := OpenDisk(dir, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	return d, dir
}

func TestBlobRoundTrip(t *testing.T) {
	t.Parallel()
	d, _ := openDisk(t, 0)
	ctx := testCtx(t)
	data := bytes.Repeat([]byte("payload-"), 100_000)
	info, err := d.Put(ctx, "pad-1", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "pad-1" || info.Size != int64(len(data)) || info.SHA256 != sha256.Sum256(data) {
		t.Fatalf("Put info = %+v", info)
	}
	r, err := d.Open(ctx, "pad-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	st, err := d.Stat(ctx, "pad-1")
	if err != nil || st.Size != int64(len(data)) {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	if _, err := d.Put(ctx, "pad-1", strings.NewReader("other")); !errors.Is(err, ErrExists) {
		t.Fatalf("overwrite: %v, want ErrExists", err)
	}
	if err := d.Delete(ctx, "pad-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(ctx, "pad-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after Delete: %v", err)
	}
	if _, err := d.Stat(ctx, "pad-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat after Delete: %v", err)
	}
	if err := d.Delete(ctx, "pad-1"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func TestBlobIDsCannotEscape(t *testing.T) {
	t.Parallel()
	d, dir := openDisk(t, 0)
	ctx := testCtx(t)
	bad := []string{"", "..", "../x", "a/b", "/etc/passwd", ".hidden", ".tmp-1", "a\\b",
		"a\x00b", "é", strings.Repeat("a", MaxBlobID+1), "-flag", "a b"}
	for _, id := range bad {
		if _, err := d.Put(ctx, id, strings.NewReader("x")); !errors.Is(err, ErrInvalid) {
			t.Errorf("Put(%q): %v, want ErrInvalid", id, err)
		}
		if _, err := d.Open(ctx, id); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q): %v", id, err)
		}
		if _, err := d.Stat(ctx, id); !errors.Is(err, ErrInvalid) {
			t.Errorf("Stat(%q): %v", id, err)
		}
		if err := d.Delete(ctx, id); !errors.Is(err, ErrInvalid) {
			t.Errorf("Delete(%q): %v", id, err)
		}
	}
	assertNoFiles(t, dir)
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestBlobFailedPutLeavesNothing(t *testing.T) {
	t.Parallel()
	d, dir := openDisk(t, 1<<20)
	ctx := testCtx(t)
	if _, err := d.Put(ctx, "half", &failingReader{n: 300_000}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if _, err := d.Put(ctx, "huge", bytes.NewReader(make([]byte, 1<<20+1))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized Put: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Put(cctx, "cancelled", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put: %v", err)
	}
	for _, id := range []string{"half", "huge", "cancelled"} {
		if _, err := d.Stat(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s exists after failed Put: %v", id, err)
		}
	}
	assertNoFiles(t, dir)
}

func TestBlobContentAddressed(t *testing.T) {
	t.Parallel()
	d, _ := openDisk(t, 0)
	ctx := testCtx(t)
	data := []byte("(module)")
	info, err := PutContent(ctx, d, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != ContentID(sha256.Sum256(data)) {
		t.Fatalf("content id = %s", info.ID)
	}
	again, err := PutContent(ctx, d, bytes.NewReader(data))
	if err != nil || again.ID != info.ID {
		t.Fatalf("re-put same content = %+v, %v", again, err)
	}
	if _, err := d.Stat(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
}

func TestOpenDiskRemovesTempLitter(t *testing.T) {
	t.Parallel()
	d, dir := openDisk(t, 0)
	if _, err := d.Put(testCtx(t), "keep", strings.NewReader("k")); err != nil {
		t.Fatal(err)
	}
	litter := filepath.Join(dir, "ab", blobTempPrefix+"123")
	os.MkdirAll(filepath.Dir(litter), 0o700)
	if err := os.WriteFile(litter, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDisk(dir, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(litter); !os.IsNotExist(err) {
		t.Fatalf("temp litter survived OpenDisk: %v", err)
	}
	if _, err := d.Stat(testCtx(t), "keep"); err != nil {
		t.Fatalf("real blob removed: %v", err)
	}
}

// assertNoFiles fails if dir holds any regular file.
func assertNoFiles(t *testing.T, dir string) {
	t.Helper()
	walkFiles(t, dir, func(path string, _ []byte) {
		t.Errorf("leftover file %s", path)
	})
}

func FuzzValidBlobID(f *testing.F) {
	for _, s := range []string{"pad-1", "..", "a/b", ".tmp-x", "sha256-ab"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !ValidBlobID(id) {
			return
		}
		root := "/blobs/ab"
		p := filepath.Join(root, id)
		if filepath.Dir(p) != root || filepath.Base(p) != id || strings.HasPrefix(id, ".") {
			t.Fatalf("ValidBlobID accepted %q, which resolves to %s", id, p)
		}
	})
}

func BenchmarkBlobPut1MiB(b *testing.B) {
	d, err := OpenDisk(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint64(data, uint64(i)) // distinct content each time
		if _, err := PutContent(b.Context(), d, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
