package audit

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// A commitReq is one AppendBatch waiting to be made durable.
type commitReq struct {
	records [][]byte
	hashes  []tlog.Hash
	done    chan error
}

// commit stages records (assigning their indexes and hashes in order) and returns once they are
// durable. The first appender to find no writer becomes the writer: it writes every staged batch,
// its own and those that arrive meanwhile, each round with one storage append.
func (l *Log) commit(records [][]byte) (first int64, err error) {
	l.mu.Lock()
	req, first, err := l.stage(records)
	if err != nil {
		l.mu.Unlock()
		return 0, err
	}
	if !l.writing {
		l.writing = true
		l.writePending() // returns with l.mu held
		l.writing = false
	}
	l.mu.Unlock()
	return first, <-req.done
}

// stage assigns indexes and computes stored hashes. Called with l.mu held.
func (l *Log) stage(records [][]byte) (*commitReq, int64, error) {
	if l.closed {
		return nil, 0, ErrClosed
	}
	if l.failed != nil {
		return nil, 0, fmt.Errorf("audit: an earlier append failed, reopen the log: %w", l.failed)
	}
	front := l.front.clone()
	req := &commitReq{records: records, done: make(chan error, 1)}
	for i, rec := range records {
		hs, err := front.add(l.staged+int64(i), tlog.RecordHash(rec))
		if err != nil {
			return nil, 0, err
		}
		req.hashes = append(req.hashes, hs...)
	}
	first := l.staged
	l.front = front
	l.staged += int64(len(records))
	l.pending = append(l.pending, req)
	return req, first, nil
}

// writePending writes staged batches until none are left. Called and returns with l.mu held;
// releases it while writing.
func (l *Log) writePending() {
	for len(l.pending) > 0 {
		batch := l.pending
		l.pending = nil
		var records [][]byte
		var hashes []tlog.Hash
		for _, r := range batch {
			records = append(records, r.records...)
			hashes = append(hashes, r.hashes...)
		}
		l.mu.Unlock()
		err := l.st.Append(records, hashes)
		l.mu.Lock()
		if err != nil {
			// Everything staged after this batch was hashed on top of it: fail it all.
			l.failed = err
			batch = append(batch, l.pending...)
			l.pending = nil
		} else {
			l.size += int64(len(records))
		}
		for _, r := range batch {
			r.done <- err
		}
	}
}
