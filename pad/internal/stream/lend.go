package stream

import (
	"errors"
	"io"
)

// errStopped ends a source's WriteTo when the pipeline stops.
var errStopped = errors.New("pipeline stopped")

// A lender is the io.Writer the pipeline hands to an in-memory source's WriteTo. Each Write
// lends it a slice of the source's memory, which it may read only until Write returns (the
// io.Writer contract). So Write puts the whole chunks it finds in the slice into slots as they
// are, copies only the pieces of chunks split across Writes, and before it returns hands over
// every slot it lent memory to and waits until the workers are done with them. The last chunk
// is always copied: it is held until WriteTo returns, to check that nothing follows it.
type lender struct {
	p    *pipeline
	i    uint64 // the chunk being filled
	fill int    // bytes of chunk i copied into s so far
	s    *slot  // the slot being filled, or nil
	err  error  // why Write refused bytes: errTrailing or errStopped
}

func (p *pipeline) lend(src io.WriterTo) {
	l := &lender{p: p, i: p.first}
	_, err := src.WriteTo(l)
	if l.err != nil {
		err = l.err
	}
	if err == errStopped {
		return
	}
	s := l.s
	if s == nil {
		if s = p.get(l.i); s == nil {
			return
		}
	}
	switch {
	case err == errTrailing:
		if s.first+uint64(len(s.in)) == p.count {
			s.in = s.in[:len(s.in)-1] // the last chunk is released only once nothing follows it
		}
		s.readErr = errTrailing
	case err != nil:
		s.readErr = err
	case l.i < p.count:
		s.readErr = io.ErrUnexpectedEOF
	}
	p.send(s)
}

func (l *lender) Write(b []byte) (n int, err error) {
	defer l.p.lent.Wait()
	for len(b) > 0 && err == nil {
		var m int
		m, err = l.put(b)
		b, n = b[m:], n+m
	}
	if l.s != nil && l.s.lent {
		l.flush()
	}
	l.err = err
	return n, err
}

// put takes the start of b into the current slot and returns how much it took.
func (l *lender) put(b []byte) (int, error) {
	p := l.p
	if l.i == p.count {
		return 0, errTrailing
	}
	if l.s == nil {
		if l.s = p.get(l.i); l.s == nil {
			return 0, errStopped
		}
	}
	s, size := l.s, p.size(l.i)
	var m int
	switch {
	case l.fill == 0 && len(b) >= size && l.i != p.count-1:
		s.in, s.lent, m = append(s.in, b[:size]), true, size
	case s.lent:
		// Copy nothing into a slot that holds lent memory: hand it over first.
		l.flush()
		return 0, nil
	default:
		m = copy(s.at(len(s.in))[l.fill:size], b)
		if l.fill += m; l.fill < size {
			return m, nil
		}
		s.in, l.fill = append(s.in, s.at(len(s.in))[:size]), 0
	}
	l.i++
	if len(s.in) == p.full(s.first) && l.i != p.count {
		l.flush()
	}
	return m, nil
}

// flush hands the current slot to the caller and the workers.
func (l *lender) flush() {
	if l.s.lent {
		l.p.lent.Add(1)
	}
	l.p.send(l.s)
	l.s = nil
}
