package stream

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var testKey = bytes.Repeat([]byte{0x11}, KeySize)

func encrypt(t testing.TB, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encrypt(&buf, bytes.NewReader(plain), testKey, uint64(len(plain)), nil); err != nil {
		t.Fatal(err)
	}
	if uint64(buf.Len()) != EncryptedSize(uint64(len(plain))) {
		t.Fatalf("encrypted %d bytes to %d, want %d", len(plain), buf.Len(), EncryptedSize(uint64(len(plain))))
	}
	return buf.Bytes()
}

var sizes = []int{0, 1, 15, 16, 17, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 5*ChunkSize + 3}

func TestRoundTripWriteTo(t *testing.T) {
	for _, n := range sizes {
		plain := make([]byte, n)
		rand.Read(plain)
		ct := encrypt(t, plain)
		r, err := NewReader(bytes.NewReader(ct), testKey, uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		m, err := r.WriteTo(&out)
		if err != nil || m != int64(n) || !bytes.Equal(out.Bytes(), plain) {
			t.Fatalf("size %d: WriteTo = %d, %v", n, m, err)
		}
		if k, err := r.Read(make([]byte, 1)); k != 0 || err != io.EOF {
			t.Fatalf("size %d: Read after the end = %d, %v", n, k, err)
		}
	}
}

func TestRoundTripRead(t *testing.T) {
	for _, n := range sizes {
		plain := make([]byte, n)
		rand.Read(plain)
		ct := encrypt(t, plain)
		r, _ := NewReader(iotest.HalfReader(bytes.NewReader(ct)), testKey, uint64(n))
		// OneByteReader wraps the decrypting reader: Read with tiny buffers.
		got, err := io.ReadAll(iotest.OneByteReader(r))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("size %d: %v", n, err)
		}
	}
}

func TestReadThenWriteTo(t *testing.T) {
	plain := make([]byte, 3*ChunkSize+5)
	rand.Read(plain)
	r, _ := NewReader(bytes.NewReader(encrypt(t, plain)), testKey, uint64(len(plain)))
	head := make([]byte, 1000)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	var rest bytes.Buffer
	if _, err := r.WriteTo(&rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(head, rest.Bytes()...), plain) {
		t.Fatal("Read then WriteTo lost or reordered bytes")
	}
}

func TestIOTestReader(t *testing.T) {
	plain := make([]byte, 2*ChunkSize+77)
	rand.Read(plain)
	r, _ := NewReader(bytes.NewReader(encrypt(t, plain)), testKey, uint64(len(plain)))
	if err := iotest.TestReader(r, plain); err != nil {
		t.Fatal(err)
	}
}

type failWriter struct{ after int }

var errWrite = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errWrite
	}
	f.after--
	return len(p), nil
}

func TestWriteToWriterError(t *testing.T) {
	plain := make([]byte, 8*ChunkSize)
	r, _ := NewReader(bytes.NewReader(encrypt(t, plain)), testKey, uint64(len(plain)))
	n, err := r.WriteTo(&failWriter{after: 2})
	if !errors.Is(err, errWrite) || n != 2*ChunkSize {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, errWrite) {
		t.Fatalf("the error is not sticky: %v", err)
	}
}

func TestEncryptWriterError(t *testing.T) {
	plain := make([]byte, 8*ChunkSize)
	err := Encrypt(&failWriter{after: 1}, bytes.NewReader(plain), testKey, uint64(len(plain)), nil)
	if !errors.Is(err, errWrite) {
		t.Fatalf("got %v", err)
	}
}

func TestEncryptSizeMismatch(t *testing.T) {
	for _, c := range []struct{ declared, actual int }{{0, 1}, {1, 0}, {ChunkSize, ChunkSize + 1}, {3 * ChunkSize, 2 * ChunkSize}, {2*ChunkSize + 1, 2 * ChunkSize}} {
		err := Encrypt(io.Discard, bytes.NewReader(make([]byte, c.actual)), testKey, uint64(c.declared), nil)
		if !errors.Is(err, ErrSize) {
			t.Errorf("declared %d, actual %d: %v", c.declared, c.actual, err)
		}
	}
}

func TestEncryptReadError(t *testing.T) {
	boom := errors.New("boom")
	err := Encrypt(io.Discard, io.MultiReader(bytes.NewReader(make([]byte, ChunkSize+10)), iotest.ErrReader(boom)), testKey, 3*ChunkSize, nil)
	if !errors.Is(err, boom) || errors.Is(err, ErrSize) {
		t.Fatalf("got %v", err)
	}
}

func TestProgress(t *testing.T) {
	var seen []uint64
	size := uint64(2*ChunkSize + 9)
	if err := Encrypt(io.Discard, bytes.NewReader(make([]byte, size)), testKey, size, func(d uint64) { seen = append(seen, d) }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 3 || seen[2] != size || seen[0] != ChunkSize {
		t.Fatalf("progress %v", seen)
	}
}

func TestReaderErrors(t *testing.T) {
	plain := make([]byte, 3*ChunkSize+100)
	ct := encrypt(t, plain)
	cases := map[string][]byte{
		"truncated":      ct[:len(ct)-1],
		"trailing":       append(bytes.Clone(ct), 1),
		"empty":          nil,
		"flipped":        func() []byte { c := bytes.Clone(ct); c[ChunkSize+Overhead+5] ^= 1; return c }(),
		"chunks swapped": append(append(append([]byte{}, ct[ChunkSize+Overhead:2*(ChunkSize+Overhead)]...), ct[:ChunkSize+Overhead]...), ct[2*(ChunkSize+Overhead):]...),
	}
	for name, c := range cases {
		for _, useRead := range []bool{false, true} {
			r, _ := NewReader(bytes.NewReader(c), testKey, uint64(len(plain)))
			var err error
			if useRead {
				_, err = io.ReadAll(r)
			} else {
				_, err = r.WriteTo(io.Discard)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s (Read %v): got %v", name, useRead, err)
			}
		}
	}
	boom := errors.New("boom")
	r, _ := NewReader(iotest.ErrReader(boom), testKey, 10)
	if _, err := r.WriteTo(io.Discard); !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Fatalf("an i/o error is reported as %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	ct := encrypt(t, []byte("hello"))
	r, _ := NewReader(bytes.NewReader(ct), bytes.Repeat([]byte{2}, KeySize), 5)
	if _, err := io.ReadAll(r); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if _, err := NewReader(nil, []byte("short"), 0); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestNonceLayout(t *testing.T) {
	var n nonce
	n.set(0x0102, true)
	want := nonce{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1}
	if n != want {
		t.Fatalf("nonce %x, want %x", n, want)
	}
	n.set(5, false)
	if n[11] != 0 || n[10] != 5 {
		t.Fatalf("nonce %x", n)
	}
}

func TestChunkCount(t *testing.T) {
	for _, c := range []struct{ size, n uint64 }{{0, 1}, {1, 1}, {ChunkSize, 1}, {ChunkSize + 1, 2}, {10 * ChunkSize, 10}} {
		if got := ChunkCount(c.size); got != c.n {
			t.Errorf("ChunkCount(%d) = %d, want %d", c.size, got, c.n)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	plain := make([]byte, 64<<20)
	var out bytes.Buffer
	out.Grow(len(plain) * 2)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		out.Reset()
		Encrypt(&out, bytes.NewReader(plain), testKey, uint64(len(plain)), nil)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	plain := make([]byte, 16<<20)
	ct := encrypt(b, plain)
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		r, _ := NewReader(bytes.NewReader(ct), testKey, uint64(len(plain)))
		r.WriteTo(io.Discard)
	}
}

// TestWriteToStopsAtFirstBadChunk checks that the parallel pipeline still releases chunks in
// order and nothing from the first bad chunk on, even when workers open later chunks first.
func TestWriteToStopsAtFirstBadChunk(t *testing.T) {
	plain := make([]byte, 8*ChunkSize)
	rand.Read(plain)
	ct := encrypt(t, plain)
	for _, bad := range [][]int{{5}, {2, 6}, {0}, {7}, {1, 2, 3}} {
		c := bytes.Clone(ct)
		for _, i := range bad {
			c[i*(ChunkSize+Overhead)+100] ^= 1
		}
		r, _ := NewReader(bytes.NewReader(c), testKey, uint64(len(plain)))
		var out bytes.Buffer
		n, err := r.WriteTo(&out)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad %v: %v", bad, err)
		}
		if want := int64(bad[0] * ChunkSize); n != want || !bytes.Equal(out.Bytes(), plain[:want]) {
			t.Fatalf("bad %v: wrote %d bytes, want the %d before the first bad chunk", bad, n, want)
		}
	}
}

// pipelineGoroutines counts the goroutines a pipeline started that have not exited yet.
func pipelineGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "created by github.com/styx-tee/styx/pad/internal/stream.startPipeline")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// noGoroutineOutlives fails t if a pipeline goroutine is still there after every call returned.
// A goroutine whose deferred WaitGroup.Done has let stop return may take a moment more to exit,
// so it waits up to five seconds; a goroutine that leaked never exits and fails the test.
// Counting only the pipeline's own goroutines keeps other tests' and the runtime's out of it.
func noGoroutineOutlives(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n := pipelineGoroutines(); n != 0; n = pipelineGoroutines() {
		if time.Now().After(deadline) {
			t.Fatalf("%d pipeline goroutines outlive the calls that started them", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestNoGoroutineOutlivesACall(t *testing.T) {
	plain := make([]byte, 6*ChunkSize)
	ct := encrypt(t, plain)
	r, _ := NewReader(bytes.NewReader(ct), testKey, uint64(len(plain)))
	r.WriteTo(&failWriter{after: 1})
	c := bytes.Clone(ct)
	c[len(c)-1] ^= 1
	r, _ = NewReader(bytes.NewReader(c), testKey, uint64(len(plain)))
	r.WriteTo(io.Discard)
	Encrypt(&failWriter{after: 1}, bytes.NewReader(plain), testKey, uint64(len(plain)), nil)
	Encrypt(io.Discard, bytes.NewReader(plain[:100]), testKey, uint64(len(plain)), nil)
	noGoroutineOutlives(t)
}
