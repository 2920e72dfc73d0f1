package stream

import (
	"crypto/cipher"
	"fmt"
	"io"
)

// A Reader decrypts a payload. It releases a chunk's plaintext only after the chunk
// authenticates, and the last chunk only after it has checked that nothing follows it. Once it
// returns an error it returns that error forever.
type Reader struct {
	aead  cipher.AEAD
	key   []byte
	src   io.Reader
	size  uint64
	n     uint64 // chunk count
	i     uint64 // next chunk to read
	buf   []byte
	plain []byte // authenticated plaintext not yet returned
	err   error
	nonce nonce
}

// NewReader returns a Reader of the payload in src, sealed under key, of size plaintext bytes.
func NewReader(src io.Reader, key []byte, size uint64) (*Reader, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &Reader{aead: aead, key: key, src: src, size: size, n: ChunkCount(size), buf: make([]byte, ChunkSize+Overhead)}, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.next()
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// WriteTo implements io.WriterTo: io.Copy uses it. It writes each chunk straight from the
// decryption buffer, and a helper goroutine reads the next chunks while this one decrypts; the
// helper ends before WriteTo returns. If w fails, the Reader fails too.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(r.plain) > 0 {
		n, err := w.Write(r.plain)
		total += int64(n)
		r.plain = r.plain[n:]
		if err != nil {
			r.err = err
			return total, err
		}
	}
	switch {
	case r.err != nil:
	case r.n-r.i == 1:
		r.err = r.writeLast(w, &total)
	case r.i < r.n:
		r.err = r.writeAhead(w, &total)
	}
	if r.err == io.EOF || r.err == nil {
		r.err = io.EOF
		return total, nil
	}
	return total, r.err
}

// writeLast decrypts the last chunk to w without a helper goroutine.
func (r *Reader) writeLast(w io.Writer, total *int64) error {
	if err := r.next(); err != nil {
		return err
	}
	n, err := w.Write(r.plain)
	*total += int64(n)
	r.plain = r.plain[n:]
	if err != nil {
		return err
	}
	return io.EOF
}

// writeAhead decrypts the remaining chunks to w through a pipeline, in order, stopping at the
// first chunk that fails: the chunks before it are written, none after.
func (r *Reader) writeAhead(w io.Writer, total *int64) error {
	n := r.n
	p, err := startPipeline(r.src, r.key, r.i, n, func(i uint64) int { return chunkLen(r.size, i, n) + Overhead }, openChunk(n))
	if err != nil {
		return err
	}
	defer p.stop()
	for r.i < n {
		s := p.next()
		if s == nil {
			return fmt.Errorf("read payload: pipeline ended at chunk %d of %d", r.i, n)
		}
		for _, c := range s.out {
			k, err := w.Write(c)
			*total += int64(k)
			if err != nil {
				return err
			}
			r.i++
		}
		if err := r.check(nil, s.aeadErr); err != nil {
			return err
		}
		if err := r.check(s.readErr, nil); err != nil {
			return err
		}
		p.release(s)
	}
	return io.EOF
}

// openChunk opens chunk i of a payload of n chunks.
func openChunk(n uint64) work {
	return func(aead cipher.AEAD, nc *nonce, i uint64, dst, in []byte) ([]byte, error) {
		nc.set(i, i == n-1)
		return aead.Open(dst, nc[:], in, nil)
	}
}

// next reads, authenticates and decrypts the next chunk into r.plain.
func (r *Reader) next() error {
	if r.i == r.n {
		return io.EOF
	}
	ct := r.buf[:chunkLen(r.size, r.i, r.n)+Overhead]
	_, err := io.ReadFull(r.src, ct)
	if err == nil && r.i == r.n-1 {
		err = expectEOF(r.src)
	}
	pt, err := r.open(ct, err)
	if err != nil {
		return err
	}
	r.plain = pt
	r.i++
	return nil
}

// open authenticates and decrypts chunk r.i in place, given the error reading it.
func (r *Reader) open(ct []byte, readErr error) ([]byte, error) {
	if err := r.check(readErr, nil); err != nil {
		return nil, err
	}
	r.nonce.set(r.i, r.i == r.n-1)
	pt, err := r.aead.Open(ct[:0], r.nonce[:], ct, nil)
	if err := r.check(nil, err); err != nil {
		return nil, err
	}
	return pt, nil
}

// check turns the errors of reading and opening chunk r.i into the Reader's errors.
func (r *Reader) check(readErr, aeadErr error) error {
	switch {
	case readErr == errTrailing:
		return fmt.Errorf("data after the last chunk: %w", ErrInvalid)
	case isEOF(readErr):
		return fmt.Errorf("payload truncated in chunk %d of %d: %w", r.i, r.n, ErrInvalid)
	case readErr != nil:
		return fmt.Errorf("read payload: %w", readErr)
	case aeadErr != nil:
		return fmt.Errorf("chunk %d of %d does not authenticate: %w", r.i, r.n, ErrInvalid)
	}
	return nil
}
