package stream

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
)

// The pipeline reads a source in one of two ways: it copies from an io.Reader, or an in-memory
// source (WriteTo and Len) lends it its memory one Write at a time. These tests run both, over
// payloads long enough for batches of several chunks.

// A pieceSource is an in-memory source whose WriteTo hands its bytes over in pieces of the given
// sizes (the last one repeated), and scribbles over each piece once Write returns: if the
// pipeline kept reading lent memory after that, the output would be wrong.
type pieceSource struct {
	data   []byte
	pieces []int
	err    error // returned once the data is written, if set
}

func (s *pieceSource) Len() int { return len(s.data) }

func (s *pieceSource) Read(p []byte) (int, error) {
	panic("the pipeline reads an in-memory source with WriteTo")
}

func (s *pieceSource) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for k := 0; len(s.data) > 0; k++ {
		n := min(len(s.data), s.pieces[min(k, len(s.pieces)-1)])
		piece := bytes.Clone(s.data[:n])
		m, err := w.Write(piece)
		total += int64(m)
		s.data = s.data[m:]
		for i := range piece {
			piece[i] = 0xee
		}
		if err != nil {
			return total, err
		}
	}
	return total, s.err
}

// plainReader hides every method but Read.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

var pieceSizes = [][]int{{1 << 30}, {1, 1, 3, 1000}, {ChunkSize - 1}, {ChunkSize}, {ChunkSize + 1}, {3*ChunkSize + 5}, {17, 10 * ChunkSize, 5}}

// sources returns the ways the tests feed b to the pipeline.
func sources(b []byte) map[string]io.Reader {
	m := map[string]io.Reader{"read": plainReader{bytes.NewReader(b)}, "bytes.Reader": bytes.NewReader(b)}
	for _, ps := range pieceSizes {
		m["pieces "+fmtInts(ps)] = &pieceSource{data: b, pieces: ps}
	}
	return m
}

func fmtInts(v []int) string {
	var b bytes.Buffer
	for i, n := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(itoa(n))
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

// bigSize is long enough for batches of several chunks on any number of cores.
const bigSize = 100*ChunkSize + 77

func TestPipelineRoundTrip(t *testing.T) {
	for _, n := range []int{2 * ChunkSize, 5*ChunkSize + 3, bigSize} {
		plain := make([]byte, n)
		rand.Read(plain)
		want := encrypt(t, plain)
		for name, src := range sources(plain) {
			var ct bytes.Buffer
			if err := Encrypt(&ct, src, testKey, uint64(n), nil); err != nil || !bytes.Equal(ct.Bytes(), want) {
				t.Fatalf("size %d, %s: Encrypt: %v, same output %v", n, name, err, bytes.Equal(ct.Bytes(), want))
			}
		}
		for name, src := range sources(want) {
			r, _ := NewReader(src, testKey, uint64(n))
			var out bytes.Buffer
			if m, err := r.WriteTo(&out); err != nil || m != int64(n) || !bytes.Equal(out.Bytes(), plain) {
				t.Fatalf("size %d, %s: WriteTo = %d, %v", n, name, m, err)
			}
		}
	}
}

func TestPipelineSizeMismatch(t *testing.T) {
	for _, c := range []struct{ declared, actual int }{{bigSize, bigSize + 1}, {bigSize, bigSize - 1}, {bigSize, 50 * ChunkSize}, {bigSize, 2 * bigSize}, {bigSize, 0}} {
		for name, src := range sources(make([]byte, c.actual)) {
			err := Encrypt(io.Discard, src, testKey, uint64(c.declared), nil)
			if !errors.Is(err, ErrSize) {
				t.Errorf("declared %d, actual %d, %s: %v", c.declared, c.actual, name, err)
			}
		}
	}
}

func TestPipelineSourceError(t *testing.T) {
	boom := errors.New("boom")
	src := &pieceSource{data: make([]byte, bigSize/2), pieces: []int{ChunkSize + 1}, err: boom}
	if err := Encrypt(io.Discard, src, testKey, bigSize, nil); !errors.Is(err, boom) || errors.Is(err, ErrSize) {
		t.Fatalf("Encrypt: %v", err)
	}
	ct := encrypt(t, make([]byte, bigSize))
	src = &pieceSource{data: ct[:len(ct)/2], pieces: []int{3 * ChunkSize}, err: boom}
	r, _ := NewReader(src, testKey, bigSize)
	if _, err := r.WriteTo(io.Discard); !errors.Is(err, boom) || errors.Is(err, ErrInvalid) {
		t.Fatalf("WriteTo: %v", err)
	}
}

// TestPipelineStopsAtFirstBadChunk checks, with batches and every kind of source, that opening
// releases every chunk before the first bad one and nothing from it on.
func TestPipelineStopsAtFirstBadChunk(t *testing.T) {
	plain := make([]byte, bigSize)
	rand.Read(plain)
	ct := encrypt(t, plain)
	last := int(ChunkCount(bigSize)) - 1
	for _, bad := range [][]int{{0}, {1}, {7}, {8}, {9}, {50, 51}, {63, 20}, {last}} {
		c := bytes.Clone(ct)
		for _, i := range bad {
			c[i*stride+10] ^= 1
		}
		first := min(bad[0], bad[len(bad)-1])
		for name, src := range sources(c) {
			r, _ := NewReader(src, testKey, bigSize)
			var out bytes.Buffer
			n, err := r.WriteTo(&out)
			if want := int64(first * ChunkSize); !errors.Is(err, ErrInvalid) || n != want || !bytes.Equal(out.Bytes(), plain[:want]) {
				t.Fatalf("bad %v, %s: wrote %d bytes (%v), want the %d before the first bad chunk", bad, name, n, err, want)
			}
		}
	}
}

func TestPipelineTruncatedOrExtended(t *testing.T) {
	plain := make([]byte, bigSize)
	rand.Read(plain)
	ct := encrypt(t, plain)
	lastStart := (len(ct) / stride) * stride
	cases := []struct {
		name    string
		payload []byte
		good    int // plaintext bytes released before the error
	}{
		{"one byte short", ct[:len(ct)-1], lastStart / stride * ChunkSize},
		{"last chunk missing", ct[:lastStart], lastStart / stride * ChunkSize},
		{"half", ct[:50*stride+100], 50 * ChunkSize},
		{"one byte more", append(bytes.Clone(ct), 0), lastStart / stride * ChunkSize},
		{"a chunk more", append(bytes.Clone(ct), ct[:stride]...), lastStart / stride * ChunkSize},
	}
	for _, c := range cases {
		for name, src := range sources(c.payload) {
			r, _ := NewReader(src, testKey, bigSize)
			var out bytes.Buffer
			n, err := r.WriteTo(&out)
			if !errors.Is(err, ErrInvalid) || n != int64(c.good) || !bytes.Equal(out.Bytes(), plain[:c.good]) {
				t.Fatalf("%s, %s: wrote %d bytes (%v), want %d", c.name, name, n, err, c.good)
			}
		}
	}
}

// TestPipelineStopsCleanly stops the pipeline early, on a write error, with every kind of source
// (a lending source may be waiting for its lent memory then): every call returns, and no
// goroutine outlives it.
func TestPipelineStopsCleanly(t *testing.T) {
	plain := make([]byte, bigSize)
	ct := encrypt(t, plain)
	for _, after := range []int{0, 1, 9, 40} {
		for name, src := range sources(plain) {
			if err := Encrypt(&failWriter{after: after}, src, testKey, bigSize, nil); !errors.Is(err, errWrite) {
				t.Fatalf("Encrypt, %s, write fails after %d: %v", name, after, err)
			}
		}
		for name, src := range sources(ct) {
			r, _ := NewReader(src, testKey, bigSize)
			if _, err := r.WriteTo(&failWriter{after: after}); !errors.Is(err, errWrite) {
				t.Fatalf("WriteTo, %s, write fails after %d: %v", name, after, err)
			}
		}
	}
	noGoroutineOutlives(t)
}

// A sliceDst is an in-memory destination (ReadFrom and Grow) whose ReadFrom reads into slices of
// the given sizes (the last one repeated). It keeps a copy of what each Read returned and
// scribbles over the slice: if a worker wrote into the slice after Read returned, the copy would
// miss it. After stopAfter Reads, if set, ReadFrom returns stopErr.
type sliceDst struct {
	got       bytes.Buffer
	sizes     []int
	stopAfter int
	stopErr   error
}

func (d *sliceDst) Grow(int) {}

func (d *sliceDst) Write([]byte) (int, error) {
	panic("Encrypt writes to an in-memory destination with ReadFrom")
}

func (d *sliceDst) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for k := 0; ; k++ {
		if d.stopAfter > 0 && k == d.stopAfter {
			return total, d.stopErr
		}
		b := make([]byte, d.sizes[min(k, len(d.sizes)-1)])
		n, err := r.Read(b)
		d.got.Write(b[:n])
		for i := range b {
			b[i] = 0xee
		}
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

var sliceSizes = [][]int{{8 << 20}, {1, 1, 7, 1000}, {stride - 1}, {stride}, {stride + 1}, {5*stride + 3}, {100, 9 * stride, 7}}

func TestPipelineInMemoryDestination(t *testing.T) {
	for _, n := range []int{5*ChunkSize + 3, bigSize} {
		plain := make([]byte, n)
		rand.Read(plain)
		want := encrypt(t, plain)
		for _, sizes := range sliceSizes {
			for name, src := range sources(plain) {
				d := &sliceDst{sizes: sizes}
				if err := Encrypt(d, src, testKey, uint64(n), nil); err != nil || !bytes.Equal(d.got.Bytes(), want) {
					t.Fatalf("size %d, %s, reads of %v: %v, same output %v", n, name, sizes, err, bytes.Equal(d.got.Bytes(), want))
				}
			}
		}
	}
}

func TestPipelineInMemoryDestinationErrors(t *testing.T) {
	plain := make([]byte, bigSize)
	for name, src := range sources(plain) {
		d := &sliceDst{sizes: []int{3 * stride}, stopAfter: 4, stopErr: errWrite}
		if err := Encrypt(d, src, testKey, bigSize, nil); !errors.Is(err, errWrite) {
			t.Fatalf("%s: destination fails: %v", name, err)
		}
	}
	for name, src := range sources(plain) {
		d := &sliceDst{sizes: []int{3 * stride}, stopAfter: 4}
		if err := Encrypt(d, src, testKey, bigSize, nil); err == nil {
			t.Fatalf("%s: destination stops reading early: no error", name)
		}
	}
	for _, actual := range []int{bigSize - 1, bigSize + 1, 3 * ChunkSize} {
		for name, src := range sources(make([]byte, actual)) {
			if err := Encrypt(&bytes.Buffer{}, src, testKey, bigSize, nil); !errors.Is(err, ErrSize) {
				t.Fatalf("%s, %d bytes for %d: %v", name, actual, bigSize, err)
			}
		}
	}
	noGoroutineOutlives(t)
}

// FuzzPipelineSources opens the same payload through Read and through lent pieces of a fuzzed
// size: both must release the same plaintext and fail the same way. The fuzzer picks the size,
// a byte to flip (or none), how much to cut or append, and the piece size.
func FuzzPipelineSources(f *testing.F) {
	f.Add(uint32(3*ChunkSize+100), uint32(0), int32(0), uint32(1<<20))
	f.Add(uint32(3*ChunkSize+100), uint32(0), int32(-5), uint32(ChunkSize+1))
	f.Add(uint32(3*ChunkSize+100), uint32(0), int32(2), uint32(stride))
	f.Add(uint32(2*ChunkSize), uint32(stride+7), int32(0), uint32(1000))
	plain := make([]byte, 8*ChunkSize)
	f.Fuzz(func(t *testing.T, size, flip uint32, cut int32, piece uint32) {
		size %= uint32(len(plain))
		ct := encrypt(t, plain[:size])
		if flip > 0 {
			ct[int(flip)%len(ct)] ^= 1
		}
		if cut < 0 {
			ct = ct[:max(0, len(ct)+int(max(cut, -1<<20)))]
		} else {
			ct = append(ct, make([]byte, cut%(2*stride))...)
		}
		piece = max(1, piece%(4*stride))
		var want, got bytes.Buffer
		r, _ := NewReader(plainReader{bytes.NewReader(ct)}, testKey, uint64(size))
		_, werr := r.WriteTo(&want)
		r, _ = NewReader(&pieceSource{data: ct, pieces: []int{int(piece)}}, testKey, uint64(size))
		_, gerr := r.WriteTo(&got)
		if !bytes.Equal(got.Bytes(), want.Bytes()) || (werr == nil) != (gerr == nil) || errors.Is(werr, ErrInvalid) != errors.Is(gerr, ErrInvalid) {
			t.Fatalf("read: %d bytes, %v; lent in pieces of %d: %d bytes, %v", want.Len(), werr, piece, got.Len(), gerr)
		}
		if flip == 0 && cut == 0 && (werr != nil || !bytes.Equal(want.Bytes(), plain[:size])) {
			t.Fatalf("an intact payload does not open: %v", werr)
		}
	})
}

// TestStringsReaderIsRead checks that a strings.Reader is read, not asked to WriteTo: its
// WriteTo would hand the pipeline a copy of the whole string at once.
func TestStringsReaderIsRead(t *testing.T) {
	plain := strings.Repeat("styx", bigSize/4)
	if InMemory(strings.NewReader(plain)) {
		t.Fatal("a strings.Reader counts as an in-memory source")
	}
	var ct bytes.Buffer
	if err := Encrypt(&ct, strings.NewReader(plain), testKey, uint64(len(plain)), nil); err != nil || !bytes.Equal(ct.Bytes(), encrypt(t, []byte(plain))) {
		t.Fatalf("Encrypt from a strings.Reader: %v", err)
	}
}
