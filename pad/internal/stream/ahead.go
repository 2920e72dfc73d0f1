package stream

import (
	"errors"
	"io"
	"sync"
)

// aheadSlots is the number of chunk buffers in flight between the reading goroutine and the
// goroutine doing the AEAD: enough to keep both busy.
const aheadSlots = 4

// A slot is one chunk buffer: its bytes, how many hold data, and the read error, if any.
type slot struct {
	buf []byte
	n   int
	err error
}

// readAhead reads chunks first..count-1 of a stream from src in its own goroutine, so that
// copying bytes in overlaps with the AEAD on the caller's goroutine. size(i) is the length of
// chunk i as stored. After the last chunk it checks that src is at its end (errTrailing if not).
// The goroutine ends when it has delivered the last chunk or an error, or when stop is called;
// stop waits for it, so the caller must call stop before it returns. The caller hands each slot
// back with release once done with it.
type readAhead struct {
	full chan *slot
	free chan *slot
	quit chan struct{}
	wg   sync.WaitGroup
}

func startReadAhead(src io.Reader, first, count uint64, size func(i uint64) int) *readAhead {
	a := &readAhead{full: make(chan *slot, aheadSlots), free: make(chan *slot, aheadSlots), quit: make(chan struct{})}
	for range aheadSlots {
		a.free <- &slot{buf: make([]byte, ChunkSize+Overhead)}
	}
	a.wg.Add(1)
	go a.run(src, first, count, size)
	return a
}

func (a *readAhead) run(src io.Reader, first, count uint64, size func(i uint64) int) {
	defer a.wg.Done()
	for i := first; i < count; i++ {
		var s *slot
		select {
		case s = <-a.free:
		case <-a.quit:
			return
		}
		s.n = size(i)
		_, s.err = io.ReadFull(src, s.buf[:s.n])
		if s.err == nil && i == count-1 {
			s.err = expectEOF(src)
		}
		select {
		case a.full <- s:
		case <-a.quit:
			return
		}
		if s.err != nil {
			return
		}
	}
}

// next returns the next slot read.
func (a *readAhead) next() *slot { return <-a.full }

func (a *readAhead) release(s *slot) { a.free <- s }

func (a *readAhead) stop() {
	close(a.quit)
	a.wg.Wait()
}

// isEOF reports whether err means the source ended.
func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
