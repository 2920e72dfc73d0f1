// Package stream implements the Pad payload: AES-256-GCM in the STREAM construction with 64 KiB
// chunks, an 11-byte chunk counter and a last-chunk flag in the nonce (docs/pad-format.md,
// "Payload"). It knows nothing of headers. Call Encrypt to seal a payload and NewReader to open
// one; both need the plaintext size up front, which fixes the chunk count.
//
// Both directions reuse a fixed set of chunk buffers: no allocation per chunk, and memory that
// does not grow with the payload. Payloads of more than one chunk go through a pipeline (see
// pipeline) that seals or opens batches of chunks on every core, reads an in-memory source
// without copying it, and seals into an in-memory destination without copying.
package stream

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ChunkSize is the plaintext size of every chunk but the last.
const ChunkSize = 64 << 10

// Overhead is the AES-GCM tag added to each chunk.
const Overhead = 16

// KeySize is the payload key size.
const KeySize = 32

// ErrInvalid reports a payload that does not authenticate: a changed, reordered, missing or extra
// chunk, or a stream cut short or extended.
var ErrInvalid = errors.New("invalid payload")

// ErrSize reports a plaintext source that is shorter or longer than the size it was declared to be.
var ErrSize = errors.New("input size differs from the declared size")

// ChunkCount returns the number of chunks of a payload of size plaintext bytes.
func ChunkCount(size uint64) uint64 {
	if size == 0 {
		return 1
	}
	return (size + ChunkSize - 1) / ChunkSize
}

// EncryptedSize returns the size of the encrypted payload for size plaintext bytes.
func EncryptedSize(size uint64) uint64 { return size + ChunkCount(size)*Overhead }

// chunkLen returns the plaintext length of chunk i of n for a payload of size bytes.
func chunkLen(size, i, n uint64) int {
	if i < n-1 {
		return ChunkSize
	}
	return int(size - (n-1)*ChunkSize)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("stream: key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// nonce is the 12-byte STREAM nonce: an 11-byte big-endian counter and the last-chunk flag.
type nonce [12]byte

func (n *nonce) set(i uint64, last bool) {
	*n = nonce{}
	binary.BigEndian.PutUint64(n[3:11], i)
	if last {
		n[11] = 1
	}
}

// Encrypt reads exactly size bytes from src and writes the encrypted payload to dst. If src ends
// early or holds more than size bytes, it returns an error wrapping ErrSize. progress, if not
// nil, is called with the number of plaintext bytes after each chunk.
//
// A payload of more than one chunk goes through a pipeline (see pipeline): chunks are read ahead
// and sealed on every core, and written in order. Its goroutines end before Encrypt returns. A
// source in memory (a bytes.Reader) is sealed without being copied, and so is a destination in
// memory (a bytes.Buffer): see sealReader.
func Encrypt(dst io.Writer, src io.Reader, key []byte, size uint64, progress func(done uint64)) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	n := ChunkCount(size)
	if n == 1 {
		return encryptOne(dst, src, aead, size, progress)
	}
	p, err := startPipeline(src, key, 0, n, func(i uint64) int { return chunkLen(size, i, n) }, sealChunk(n))
	if err != nil {
		return err
	}
	defer p.stop()
	e := &sealed{p: p, size: size, progress: progress}
	if w, ok := dst.(inMemoryDst); ok {
		return e.readFrom(w)
	}
	for s := p.next(); s != nil; s = p.next() {
		for _, c := range s.out {
			if _, err := dst.Write(c); err != nil {
				return fmt.Errorf("stream: write: %w", err)
			}
		}
		if err := e.finish(s); err != nil {
			return err
		}
	}
	return e.end()
}

// sealed counts the batches Encrypt has handed to its destination.
type sealed struct {
	p        *pipeline
	size     uint64
	progress func(uint64)
	done     uint64 // plaintext bytes sealed and handed over
}

// finish accounts for batch s, whose outputs are in the destination, and releases it.
func (e *sealed) finish(s *slot) error {
	for _, c := range s.out {
		e.done += uint64(len(c) - Overhead)
		if e.progress != nil {
			e.progress(e.done)
		}
	}
	if s.readErr != nil {
		return encryptReadErr(s.first+uint64(len(s.out)), e.size, s.readErr)
	}
	e.p.release(s) // s belongs to the pipeline again: do not touch it below
	return nil
}

// end checks that the whole payload was handed over.
func (e *sealed) end() error {
	if e.done != e.size {
		return fmt.Errorf("stream: sealed %d of %d bytes", e.done, e.size)
	}
	return nil
}

// sealChunk seals chunk i of a payload of n chunks.
func sealChunk(n uint64) work {
	return func(aead cipher.AEAD, nc *nonce, i uint64, dst, in []byte) ([]byte, error) {
		nc.set(i, i == n-1)
		return aead.Seal(dst, nc[:], in, nil), nil
	}
}

// encryptOne seals a payload of one chunk without a helper goroutine.
func encryptOne(dst io.Writer, src io.Reader, aead cipher.AEAD, size uint64, progress func(uint64)) error {
	buf := make([]byte, size+Overhead)
	_, err := io.ReadFull(src, buf[:size])
	if err == nil {
		err = expectEOF(src)
	}
	if err != nil {
		return encryptReadErr(0, size, err)
	}
	var nc nonce
	nc.set(0, true)
	if _, err := dst.Write(aead.Seal(buf[:0], nc[:], buf[:size], nil)); err != nil {
		return fmt.Errorf("stream: write: %w", err)
	}
	if progress != nil {
		progress(size)
	}
	return nil
}

func encryptReadErr(i, size uint64, err error) error {
	switch {
	case isEOF(err):
		return fmt.Errorf("stream: input ended in chunk %d, before the declared %d bytes: %w", i, size, ErrSize)
	case err == errTrailing:
		return fmt.Errorf("stream: input is longer than the declared %d bytes: %w", size, ErrSize)
	}
	return fmt.Errorf("stream: read input: %w", err)
}

var errTrailing = errors.New("trailing data")

// expectEOF returns nil if r is at its end, errTrailing if it holds more, or a read error.
func expectEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return errTrailing
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
