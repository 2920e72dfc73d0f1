package stream

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// A Reader decrypts a payload. It releases a chunk's plaintext only after the chunk
// authenticates, and the last chunk only after it has checked that nothing follows it. Once it
// returns an error it returns that error forever.
type Reader struct {
	aead  cipher.AEAD
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
	return &Reader{aead: aead, src: src, size: size, n: ChunkCount(size), buf: make([]byte, ChunkSize+Overhead)}, nil
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

// WriteTo implements io.WriterTo: io.Copy uses it to write each chunk straight from the
// decryption buffer.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.plain) > 0 {
			n, err := w.Write(r.plain)
			total += int64(n)
			r.plain = r.plain[n:]
			if err != nil {
				return total, err
			}
		}
		if r.err != nil {
			if r.err == io.EOF {
				return total, nil
			}
			return total, r.err
		}
		r.err = r.next()
	}
}

// next reads, authenticates and decrypts the next chunk into r.plain.
func (r *Reader) next() error {
	if r.i == r.n {
		return io.EOF
	}
	last := r.i == r.n-1
	ct := r.buf[:chunkLen(r.size, r.i, r.n)+Overhead]
	if _, err := io.ReadFull(r.src, ct); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("payload truncated in chunk %d of %d: %w", r.i, r.n, ErrInvalid)
		}
		return fmt.Errorf("read payload: %w", err)
	}
	if last {
		if err := expectEOF(r.src); err != nil {
			if err == errTrailing {
				return fmt.Errorf("data after the last chunk: %w", ErrInvalid)
			}
			return fmt.Errorf("read payload: %w", err)
		}
	}
	r.nonce.set(r.i, last)
	pt, err := r.aead.Open(ct[:0], r.nonce[:], ct, nil)
	if err != nil {
		return fmt.Errorf("chunk %d of %d does not authenticate: %w", r.i, r.n, ErrInvalid)
	}
	r.plain = pt
	r.i++
	return nil
}
