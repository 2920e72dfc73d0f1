package stream

import (
	"crypto/cipher"
	"errors"
	"io"
	"runtime"
	"sync"
)

// maxWorkers caps the goroutines that run the AEAD in parallel.
const maxWorkers = 4

// A slot is one chunk in flight: its buffer, what was read into it, and what a worker made of it.
type slot struct {
	buf     []byte
	i       uint64 // chunk index
	n       int    // bytes read into buf
	readErr error  // error reading the chunk (io.ErrUnexpectedEOF, errTrailing, an i/o error)
	out     []byte // the sealed or opened chunk, in buf
	aeadErr error  // the chunk did not authenticate (opening only)
	done    chan struct{}
}

// A pipeline moves chunks first..count-1 of a stream through three stages: one goroutine reads
// them from src in order, workers seal or open them in parallel, and the caller takes them back
// in order with next. Copying and the AEAD thus overlap, and use every core.
//
// Every goroutine ends when the stream is done, on the first read error, or on stop; stop waits
// for them, so the caller must call it before it returns. No goroutine outlives the call that
// started the pipeline, and a chunk is never handed to the caller out of order.
type pipeline struct {
	order chan *slot // read slots, in stream order, for the caller
	jobs  chan *slot // read slots for the workers
	free  chan *slot
	quit  chan struct{}
	wg    sync.WaitGroup
}

// work is what a worker does to one slot.
type work func(aead cipher.AEAD, nc *nonce, s *slot)

func startPipeline(src io.Reader, key []byte, first, count uint64, size func(i uint64) int, f work) (*pipeline, error) {
	workers := max(1, min(runtime.GOMAXPROCS(0), maxWorkers, int(count-first)))
	slots := 2*workers + 2
	p := &pipeline{
		order: make(chan *slot, slots), jobs: make(chan *slot, slots),
		free: make(chan *slot, slots), quit: make(chan struct{}),
	}
	for range slots {
		p.free <- &slot{buf: make([]byte, ChunkSize+Overhead), done: make(chan struct{}, 1)}
	}
	aeads := make([]cipher.AEAD, workers)
	for i := range aeads {
		a, err := newAEAD(key)
		if err != nil {
			return nil, err
		}
		aeads[i] = a
	}
	p.wg.Add(1 + workers)
	go p.read(src, first, count, size)
	for _, a := range aeads {
		go p.work(a, f)
	}
	return p, nil
}

func (p *pipeline) read(src io.Reader, first, count uint64, size func(i uint64) int) {
	defer p.wg.Done()
	defer close(p.jobs)
	for i := first; i < count; i++ {
		var s *slot
		select {
		case s = <-p.free:
		case <-p.quit:
			return
		}
		s.i, s.n, s.out, s.aeadErr = i, size(i), nil, nil
		_, s.readErr = io.ReadFull(src, s.buf[:s.n])
		if s.readErr == nil && i == count-1 {
			s.readErr = expectEOF(src)
		}
		// Both channels hold every slot, so these sends never block.
		p.order <- s
		p.jobs <- s
		if s.readErr != nil {
			return
		}
	}
}

func (p *pipeline) work(aead cipher.AEAD, f work) {
	defer p.wg.Done()
	var nc nonce
	for s := range p.jobs {
		select {
		case <-p.quit:
		default:
			if s.readErr == nil {
				f(aead, &nc, s)
			}
		}
		s.done <- struct{}{}
	}
}

// next returns the next chunk in stream order once a worker is done with it.
func (p *pipeline) next() *slot {
	s := <-p.order
	<-s.done
	return s
}

// release hands a slot back for reuse; the caller must not touch it afterwards.
func (p *pipeline) release(s *slot) { p.free <- s }

func (p *pipeline) stop() {
	close(p.quit)
	p.wg.Wait()
}

// isEOF reports whether err means the source ended.
func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
