package stream

import (
	"fmt"
	"io"
)

// An inMemoryDst is a destination that grows in memory and whose ReadFrom reads straight into
// its free capacity: a bytes.Buffer. Encrypt seals into that memory rather than copying each
// sealed chunk into it with Write.
type inMemoryDst interface {
	io.ReaderFrom
	Grow(n int)
}

// readFrom has w read the payload from a sealReader.
func (e *sealed) readFrom(w inMemoryDst) error {
	r := &sealReader{sealed: e}
	if _, err := w.ReadFrom(r); err != nil {
		return err
	}
	if r.err != io.EOF {
		return fmt.Errorf("stream: write: destination stopped reading")
	}
	return e.end()
}

// A sealReader is the io.Reader Encrypt hands to an in-memory destination's ReadFrom. Each Read
// has the workers seal batches straight into the slice it is given, back to back, and returns
// once they are done: it does not keep the slice (the io.Reader contract). A batch that does not
// fit waits for the next Read; one that does not fit in an empty slice is sealed in its own
// buffer and handed over in pieces.
type sealReader struct {
	*sealed
	rest []byte // sealed bytes of batch cur not handed over yet
	cur  *slot
	err  error // sticky; io.EOF after the last batch
}

func (r *sealReader) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(r.rest) > 0 {
		return r.handOver(b)
	}
	p, n, room := r.p, 0, true
	for {
		if room && p.window.n < p.slots && p.more() {
			if s := p.take(p.window.n == 0); s != nil {
				m := sealedLen(s)
				switch {
				case n+m <= len(b):
					p.dispatch(s, b[n:n+m:n+m])
					n += m
					continue
				case n == 0:
					p.dispatch(s, nil)
					r.cur = p.wait()
					// Chunks are sealed in place at stride bytes from each other, and every
					// chunk but the last fills its stride: the batch is one run of bytes.
					r.rest = r.cur.buf[:m]
					return r.handOver(b)
				default:
					p.held, room = s, false
				}
			}
		}
		s := p.wait()
		if s == nil {
			return n, nil
		}
		if r.err = r.finishOne(s); r.err != nil {
			for p.wait() != nil {
				// The other batches are sealing into b: wait for them before returning.
			}
			return n, r.err
		}
	}
}

// handOver copies what it can of r.rest into b.
func (r *sealReader) handOver(b []byte) (int, error) {
	k := copy(b, r.rest)
	if r.rest = r.rest[k:]; len(r.rest) == 0 {
		s := r.cur
		r.cur = nil
		r.err = r.finishOne(s)
	}
	return k, r.err
}

// finishOne accounts for batch s; it returns io.EOF after the last.
func (r *sealReader) finishOne(s *slot) error {
	last := s.last(r.p.count)
	if err := r.finish(s); err != nil {
		return err
	}
	if last {
		return io.EOF
	}
	return nil
}

// sealedLen returns the size of batch s sealed.
func sealedLen(s *slot) int {
	n := 0
	for _, in := range s.in {
		n += len(in) + Overhead
	}
	return n
}
