package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
)

// Error numbers returned (negated) by host functions to the guest. They are part of the
// ABI: see docs/sandbox.md.
const (
	errnoBadHandle = 1 // no such open handle, or wrong direction
	errnoNotFound  = 2 // no such input
	errnoDenied    = 3 // the host refused (undeclared output, bad kind, too many handles)
	errnoIO        = 4 // the host's reader or writer failed
	errnoNoQuery   = 5 // query call outside a query
)

type runKey struct{}

// run is the state of one run or of one warm instance; host functions find it in the
// context. It is used by one goroutine at a time (the one executing the guest).
type run struct {
	cfg     Config
	host    Host
	handles map[int32]*handle
	next    int32

	outBytes, logBytes int64
	logTruncated       bool
	stderrTail         []byte // last bytes of stderr, to find a marker split across writes
	oom                bool   // the guest's runtime reported running out of memory

	req            []byte     // current query, nil outside a query
	reqBuf         []byte     // holds req, reused between queries
	queryHandles   []int32    // handles opened on the current query
	qt             queryTable // the table of the queries' first query handle read as a table
	queryTableBusy bool       // qt serves a handle of the current query
	resp           []byte
	responded      bool
}

type handle struct {
	name  string
	r     io.Reader
	w     io.WriteCloser
	err   error  // pending reader error after a short read
	table *table // set once the input is read as a numeric table
	raw   bool   // read as bytes (then it cannot become a table)
	query bool   // opened on the current query by query_open
}

func newRun(cfg Config, host Host) *run {
	return &run{cfg: cfg, host: host, handles: map[int32]*handle{}}
}

func stateOf(ctx context.Context) *run {
	st, _ := ctx.Value(runKey{}).(*run)
	if st == nil {
		panic(faultf(ErrGuestFault, "host call outside a run"))
	}
	return st
}

func (s *run) add(h *handle) int32 {
	if len(s.handles) >= s.cfg.MaxHandles {
		return -errnoDenied
	}
	s.next++
	s.handles[s.next] = h
	return s.next
}

// closeAll closes every handle still open and reports the first error.
func (s *run) closeAll() error {
	var errs []error
	for id, h := range s.handles {
		errs = append(errs, h.close())
		delete(s.handles, id)
	}
	return errors.Join(errs...)
}

// endQuery closes the handles opened on the query that just ended.
func (s *run) endQuery() {
	for _, id := range s.queryHandles {
		delete(s.handles, id)
	}
	s.queryHandles = s.queryHandles[:0]
	s.queryTableBusy = false
	s.req = nil
}

func (h *handle) close() error {
	if h.w != nil {
		return h.w.Close()
	}
	if c, ok := h.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// log passes p to the host's log within the log cap; what exceeds the cap is dropped
// and a single marker says so.
func (s *run) log(p []byte) {
	room := s.cfg.MaxLogBytes - s.logBytes
	if int64(len(p)) > room {
		p = p[:max(room, 0)]
		if !s.logTruncated {
			s.logTruncated = true
			defer s.host.Log([]byte("\n[styx: log truncated at the cap]\n"))
		}
	}
	if len(p) > 0 {
		s.logBytes += int64(len(p))
		s.host.Log(p)
	}
}

const tailSize = 64

var oomMarker = []byte("out of memory")

// stderrWriter feeds the guest's stderr to the log and watches it for the Go runtime's
// out-of-memory report, to classify the guest's death (never for error messages: stderr
// is guest-controlled, so a guest can at most pick ErrMemory over ErrExit).
type stderrWriter struct{ s *run }

func (w stderrWriter) Write(p []byte) (int, error) {
	s := w.s
	if !s.oom {
		window := append(s.stderrTail, p[:min(len(p), 4096)]...)
		s.oom = bytes.Contains(window, oomMarker) || bytes.Contains(p, oomMarker)
		s.stderrTail = append(s.stderrTail[:0], window[max(0, len(window)-tailSize):]...)
	}
	s.log(p)
	return len(p), nil
}

type stdoutWriter struct{ s *run }

func (w stdoutWriter) Write(p []byte) (int, error) { w.s.log(p); return len(p), nil }

func (s *run) outOfMemory() bool { return s.oom }
