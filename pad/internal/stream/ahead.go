package stream

import (
	"crypto/cipher"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
)

// maxWorkers caps the goroutines that run the AEAD in parallel.
const maxWorkers = 4

// maxBatch caps the chunks handed from one stage to the next at once. Moving a batch rather than
// a chunk divides the channel operations and goroutine wake-ups by up to maxBatch; the cap keeps
// the buffers small: at most (2·workers+2)·maxBatch chunks in flight, whatever the payload size.
const maxBatch = 8

// stride is the room one chunk takes in a slot buffer: the larger of its two forms.
const stride = ChunkSize + Overhead

// A slot is a batch of consecutive chunks in flight: where each chunk's input is, where its
// output goes, what a worker made of them, and how the batch ended.
type slot struct {
	buf     []byte   // room for maxBatch chunks, stride bytes each
	first   uint64   // index of the first chunk
	in      [][]byte // input of each complete chunk: in buf, or lent by the source (see lender)
	dst     []byte   // where the outputs go, back to back, if not in buf (see sealReader)
	out     [][]byte // output of chunks first..first+len(out)-1
	lent    bool     // some of in is lent by the source and must be done with before it returns
	readErr error    // how reading ended after the chunks in in (io.ErrUnexpectedEOF, errTrailing, an i/o error)
	aeadErr error    // chunk first+len(out) did not authenticate (opening only)
	done    chan struct{}
}

func (s *slot) reset(first uint64) {
	clear(s.in) // drop references to lent memory
	s.first, s.in, s.dst, s.out, s.lent, s.readErr, s.aeadErr = first, s.in[:0], nil, s.out[:0], false, nil, nil
}

// at returns the room for the j-th chunk of s.
func (s *slot) at(j int) []byte { return s.buf[j*stride : (j+1)*stride] }

// last reports whether s is the last batch of the stream: it ends in an error or at chunk count-1.
func (s *slot) last(count uint64) bool { return s.readErr != nil || s.first+uint64(len(s.in)) == count }

// A pipeline moves chunks first..count-1 of a stream through three stages, a batch of up to
// maxBatch chunks at a time: one goroutine reads them from src in order, workers seal or open
// them in parallel, and the calling goroutine hands them to the workers and takes them back in
// stream order (next, or sealReader). Copying and the AEAD thus overlap, and use every core.
//
// A source that holds its bytes in memory (see inMemory) lends them: whole chunks are sealed or
// opened straight from its memory, without a copy.
//
// Every goroutine ends when the stream is done, on the first read error, or on stop; stop waits
// for them, so the caller must call it before it returns. No goroutine outlives the call that
// started the pipeline, and a chunk is never handed to the caller out of order.
type pipeline struct {
	first, count uint64
	batch, slots int
	size         func(i uint64) int // input bytes of chunk i
	order        chan *slot         // read batches, in stream order, for the caller; closed when the reader ends
	jobs         chan *slot         // batches for the workers, from the caller; closed by stop
	free         chan *slot
	quit         chan struct{}
	wg           sync.WaitGroup
	lent         sync.WaitGroup // batches holding lent memory that no worker is done with yet

	// The caller's side.
	window ring  // batches handed to the workers, in stream order, not taken back yet
	held   *slot // a batch taken from order but not handed to the workers (see sealReader)
	ended  bool  // the last batch has been taken from order
}

// work is what a worker does to chunk i: seal or open in into dst (dst[:0] may be in).
type work func(aead cipher.AEAD, nc *nonce, i uint64, dst, in []byte) ([]byte, error)

func startPipeline(src io.Reader, key []byte, first, count uint64, size func(i uint64) int, f work) (*pipeline, error) {
	chunks := count - first
	workers := max(1, min(runtime.GOMAXPROCS(0), maxWorkers, int(min(chunks, maxWorkers))))
	slots := 2*workers + 2
	// Small payloads get small batches, so that every worker still has a share.
	batch := int(max(1, min(maxBatch, chunks/uint64(2*slots))))
	p := &pipeline{
		first: first, count: count, batch: batch, slots: slots, size: size,
		order: make(chan *slot, slots), jobs: make(chan *slot, slots),
		free: make(chan *slot, slots), quit: make(chan struct{}),
	}
	for range slots {
		p.free <- &slot{
			buf: make([]byte, batch*stride), in: make([][]byte, 0, batch), out: make([][]byte, 0, batch),
			done: make(chan struct{}, 1),
		}
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
	go p.produce(src)
	for _, a := range aeads {
		go p.work(a, f)
	}
	return p, nil
}

// An inMemory source holds its bytes in memory and writes them itself, in one Write: a
// bytes.Reader or bytes.Buffer. WriteTo then lends the pipeline that memory. Other WriterTo
// sources (a file, a bufio.Reader) copy through a small buffer of their own in WriteTo, which
// would cost more than it saves.
type inMemory interface {
	io.WriterTo
	Len() int
}

// InMemory reports whether Encrypt and Reader.WriteTo read src without copying it (see
// pipeline). pad.Open reads the header of such a source directly, not through a bufio.Reader.
//
// A strings.Reader is not one: its WriteTo hands a Writer without WriteString (the lender) a
// copy of the whole string, allocated at once.
func InMemory(src io.Reader) bool {
	if _, ok := src.(*strings.Reader); ok {
		return false
	}
	_, ok := src.(inMemory)
	return ok
}

func (p *pipeline) produce(src io.Reader) {
	defer p.wg.Done()
	defer close(p.order)
	if InMemory(src) {
		p.lend(src.(io.WriterTo))
		return
	}
	p.read(src)
}

// get returns a free slot for the chunks from first on, or nil once the pipeline stops.
func (p *pipeline) get(first uint64) *slot {
	select {
	case s := <-p.free:
		s.reset(first)
		return s
	case <-p.quit:
		return nil
	}
}

// send hands a read batch to the caller. order holds every slot, so it never blocks.
func (p *pipeline) send(s *slot) { p.order <- s }

// full returns the chunks a slot from first on holds when full.
func (p *pipeline) full(first uint64) int { return int(min(uint64(p.batch), p.count-first)) }

// read copies chunks from src into slots, a batch at a time.
func (p *pipeline) read(src io.Reader) {
	for i := p.first; i < p.count; {
		s := p.get(i)
		if s == nil {
			return
		}
		for j := range p.full(i) {
			b := s.at(j)[:p.size(i)]
			if _, s.readErr = io.ReadFull(src, b); s.readErr != nil {
				break
			}
			s.in = append(s.in, b)
			i++
			if i == p.count {
				if s.readErr = expectEOF(src); s.readErr != nil {
					s.in = s.in[:j] // the last chunk is released only once nothing follows it
				}
			}
		}
		p.send(s)
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
			s.process(aead, &nc, f)
		}
		if s.lent {
			p.lent.Done()
		}
		s.done <- struct{}{}
	}
}

// process seals or opens the chunks of s, up to the first that fails.
func (s *slot) process(aead cipher.AEAD, nc *nonce, f work) {
	d := s.dst
	for j, in := range s.in {
		if s.dst == nil {
			d = s.at(j)
		}
		o, err := f(aead, nc, s.first+uint64(j), d[:0], in)
		if err != nil {
			s.aeadErr = err
			return
		}
		s.out = append(s.out, o)
		d = d[len(o):]
	}
}

// take returns the next read batch, or nil if there is none yet and wait is false, or if the
// reader ended.
func (p *pipeline) take(wait bool) *slot {
	s := p.held
	switch {
	case s != nil:
		p.held = nil
	case wait:
		s = <-p.order
	default:
		select {
		case s = <-p.order:
		default:
		}
	}
	if s != nil && s.last(p.count) {
		p.ended = true
	}
	return s
}

// more reports whether there are batches left to take.
func (p *pipeline) more() bool { return p.held != nil || !p.ended }

// dispatch hands s to the workers, to seal or open into dst, or into its own buffer if dst is nil.
func (p *pipeline) dispatch(s *slot, dst []byte) {
	s.dst = dst
	p.jobs <- s // jobs holds every slot: never blocks
	p.window.push(s)
}

// next returns the next batch in stream order once a worker is done with it, or nil after the
// last. It keeps the workers supplied with every batch read so far.
func (p *pipeline) next() *slot {
	for p.window.n < p.slots && p.more() {
		s := p.take(p.window.n == 0)
		if s == nil {
			break
		}
		p.dispatch(s, nil)
	}
	return p.wait()
}

// wait returns the oldest batch handed to the workers once they are done with it, or nil if none.
func (p *pipeline) wait() *slot {
	if p.window.n == 0 {
		return nil
	}
	s := p.window.pop()
	<-s.done
	return s
}

// release hands a slot back for reuse; the caller must not touch it afterwards.
func (p *pipeline) release(s *slot) { p.free <- s }

// stop ends the pipeline. Batches read but never handed to the workers are dropped; a lending
// source waits for them (see lender), so they count as done.
func (p *pipeline) stop() {
	close(p.quit)
	close(p.jobs)
	if p.held != nil && p.held.lent {
		p.lent.Done()
	}
	for s := range p.order {
		if s.lent {
			p.lent.Done()
		}
	}
	p.wg.Wait()
}

// A ring is a queue of at most 2·maxWorkers+2 slots.
type ring struct {
	s       [2*maxWorkers + 2]*slot
	head, n int
}

func (r *ring) push(s *slot) {
	r.s[(r.head+r.n)%len(r.s)] = s
	r.n++
}

func (r *ring) pop() *slot {
	s := r.s[r.head]
	r.s[r.head] = nil
	r.head = (r.head + 1) % len(r.s)
	r.n--
	return s
}

// isEOF reports whether err means the source ended.
func isEOF(err error) bool { return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) }
