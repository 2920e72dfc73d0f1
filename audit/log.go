package audit

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// Options configure a Log. The zero value opens a log that can append and prove but not sign.
type Options struct {
	// Origin names the log in its signed heads (a note key name: no spaces, no '+').
	// Empty means DefaultOrigin.
	Origin string
	// Signer signs tree heads; nil means SignHead fails with ErrNoSigner.
	Signer Signer
	// PublicKey is the cluster key heads are verified with. If nil, it is taken from Signer when
	// Signer has a Public() crypto.PublicKey method (both adapters in this package do).
	PublicKey ed25519.PublicKey
	// Now is the clock for event and head times, called concurrently; nil means time.Now.
	Now func() time.Time
	// Logger receives diagnostics (torn-tail repairs); nil discards them.
	Logger *slog.Logger
	// Seal, if set, encrypts records at rest in the file-backed log (see FileOptions.Seal).
	Seal cipher.AEAD
}

// A Log is the append-only transparency log. It is safe for concurrent use. Each append is
// durable when it returns; concurrent appends are committed together (group commit), so many
// appenders share the cost of one fsync.
type Log struct {
	st     Storage
	origin string
	signer Signer
	pub    ed25519.PublicKey
	now    func() time.Time

	mu      sync.Mutex
	size    int64        // durable records: what reads and proofs see
	staged  int64        // records given an index, durable or waiting in pending
	front   *frontier    // the tree frontier at staged
	pending []*commitReq // staged batches waiting for the writer
	writing bool         // an appender is writing pending batches
	failed  error        // a storage append failed: the log must be reopened
	closed  bool

	headMu sync.Mutex  // serialises head signing, apart from appends
	head   *SignedHead // latest signed head, or nil
}

// An Entry is one record of the log with its index.
type Entry struct {
	Index  int64
	Record []byte // the canonical encoding the tree commits to
	Event  *Event
}

// Open opens (or creates) the file-backed log in dir.
func Open(dir string, opts Options) (*Log, error) {
	st, err := OpenFileStorage(dir, FileOptions{Logger: opts.Logger, Seal: opts.Seal})
	if err != nil {
		return nil, err
	}
	l, err := New(st, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	return l, nil
}

// New opens a log over st. It checks that the saved signed head, if any, verifies and is a
// prefix of what st holds: records lost or changed under a signed head are ErrCorrupt.
func New(st Storage, opts Options) (*Log, error) {
	l := &Log{st: st, origin: opts.Origin, signer: opts.Signer, pub: opts.PublicKey, now: opts.Now}
	if l.origin == "" {
		l.origin = DefaultOrigin
	}
	if err := checkOrigin(l.origin); err != nil {
		return nil, err
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.pub == nil && l.signer != nil {
		if p, ok := l.signer.(interface{ Public() crypto.PublicKey }); ok {
			l.pub, _ = p.Public().(ed25519.PublicKey)
		}
	}
	if l.signer != nil && len(l.pub) != ed25519.PublicKeySize {
		return nil, errors.New("audit: a Signer needs an Ed25519 PublicKey in Options")
	}
	l.size = st.Size()
	l.staged = l.size
	var err error
	if l.front, err = newFrontier(l.size, st); err != nil {
		return nil, fmt.Errorf("audit: load tree frontier: %w", err)
	}
	if err := l.checkSavedHead(); err != nil {
		return nil, err
	}
	return l, nil
}

// checkSavedHead verifies the saved head against the records.
func (l *Log) checkSavedHead() error {
	b, err := l.st.LoadHead()
	if err != nil || b == nil {
		return err
	}
	if l.pub == nil {
		return nil // nothing to verify it with; a log without a key never trusts it either
	}
	sh, err := VerifyHead(b, l.pub)
	if err != nil {
		return fmt.Errorf("audit: saved head: %v: %w", err, ErrCorrupt)
	}
	if sh.Origin != l.origin {
		return fmt.Errorf("audit: saved head is for log %q, not %q: %w", sh.Origin, l.origin, ErrCorrupt)
	}
	if sh.Size > l.size {
		return fmt.Errorf("audit: saved head covers %d records, only %d on disk: %w", sh.Size, l.size, ErrCorrupt)
	}
	root, err := tlog.TreeHash(sh.Size, l.st)
	if err != nil {
		return fmt.Errorf("audit: tree hash: %w", err)
	}
	if root != sh.Root {
		return fmt.Errorf("audit: records under the saved head of size %d changed: %w", sh.Size, ErrCorrupt)
	}
	l.head = sh
	return nil
}

// Size returns the number of records in the log.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// Origin returns the name the log signs its heads under.
func (l *Log) Origin() string { return l.origin }

// PublicKey returns the key the log's heads verify with (nil if it has none).
func (l *Log) PublicKey() ed25519.PublicKey { return l.pub }

// Append appends one event and returns its entry once it is durable. A zero ev.Time is set to
// the log's clock; any time is stored in UTC.
func (l *Log) Append(ctx context.Context, ev Event) (Entry, error) {
	es, err := l.AppendBatch(ctx, []Event{ev})
	if err != nil {
		return Entry{}, err
	}
	return es[0], nil
}

// AppendBatch appends events in order with one durable write: the way to log a burst of queries.
// An invalid event fails the whole batch before anything is written. It returns once the events
// are durable, even if ctx is cancelled meanwhile (an append under way cannot be taken back). After
// a storage error the outcome is unknown (the records may have reached the disk); the log then
// refuses appends until it is reopened, and reopening shows what was kept.
func (l *Log) AppendBatch(ctx context.Context, evs []Event) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, nil
	}
	now := l.now().UTC()
	entries := make([]Entry, len(evs))
	records := make([][]byte, len(evs))
	for i := range evs {
		ev := evs[i]
		if ev.Time.IsZero() {
			ev.Time = now
		}
		ev.Time = ev.Time.UTC()
		rec, err := MarshalRecord(&ev)
		if err != nil {
			return nil, fmt.Errorf("audit: event %d of %d: %w", i, len(evs), err)
		}
		records[i] = rec
		entries[i] = Entry{Record: rec, Event: &ev}
	}
	first, err := l.commit(records)
	if err != nil {
		return nil, err
	}
	for i := range entries {
		entries[i].Index = first + int64(i)
	}
	return entries, nil
}

// Read returns the entry at index.
func (l *Log) Read(index int64) (Entry, error) {
	rec, err := l.st.ReadRecord(index)
	if err != nil {
		return Entry{}, err
	}
	ev, err := ParseRecord(rec)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: record %d: %v: %w", index, err, ErrCorrupt)
	}
	return Entry{Index: index, Record: rec, Event: ev}, nil
}

// SignHead returns a signed head covering every record appended so far. If the latest signed head
// already covers them it is returned as is; otherwise a new head is signed, saved and returned.
func (l *Log) SignHead(ctx context.Context) (*SignedHead, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.headMu.Lock()
	defer l.headMu.Unlock()
	l.mu.Lock()
	size, closed := l.size, l.closed
	l.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if l.head != nil && l.head.Size == size {
		return l.head, nil
	}
	if l.signer == nil {
		return nil, ErrNoSigner
	}
	root, err := tlog.TreeHash(size, l.st)
	if err != nil {
		return nil, fmt.Errorf("audit: tree hash: %w", err)
	}
	sh, err := signHead(Head{Origin: l.origin, Size: size, Root: root, Time: l.now().UTC()}, l.signer, l.pub)
	if err != nil {
		return nil, err
	}
	if err := l.st.SaveHead(sh.Note); err != nil {
		return nil, err
	}
	l.head = sh
	return sh, nil
}

// LatestHead returns the latest signed head without signing a new one (nil if none yet).
func (l *Log) LatestHead() *SignedHead {
	l.headMu.Lock()
	defer l.headMu.Unlock()
	return l.head
}

// ProveInclusion returns the proof that record index is in the tree of the given size.
func (l *Log) ProveInclusion(index, size int64) (tlog.RecordProof, error) {
	if err := l.checkSize(size); err != nil {
		return nil, err
	}
	if index < 0 || index >= size {
		return nil, fmt.Errorf("audit: record %d in a tree of %d: %w", index, size, ErrNotFound)
	}
	return tlog.ProveRecord(size, index, l.st)
}

// ProveConsistency returns the proof that the tree of newSize extends the tree of oldSize. An
// empty old tree needs no proof.
func (l *Log) ProveConsistency(oldSize, newSize int64) (tlog.TreeProof, error) {
	if err := l.checkSize(newSize); err != nil {
		return nil, err
	}
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("audit: consistency from %d to %d: %w", oldSize, newSize, ErrNotFound)
	}
	if oldSize == 0 {
		return tlog.TreeProof{}, nil
	}
	return tlog.ProveTree(newSize, oldSize, l.st)
}

func (l *Log) checkSize(size int64) error {
	if cur := l.Size(); size < 0 || size > cur {
		return fmt.Errorf("audit: tree of %d records, log has %d: %w", size, cur, ErrNotFound)
	}
	return nil
}

// Close closes the log and its storage.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.st.Close()
}
