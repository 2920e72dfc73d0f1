package store

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"
)

// AuditLog keeps the records of the transparency log (package audit builds the Merkle tree and
// signs its heads) in the audit stream, and implements audit.Storage. One Append is one message,
// published with the stream's expected last sequence, so it is atomic and durable (the store
// fsyncs every write) and two writers can never interleave or fill a gap. Records are sealed with
// an AEAD under a key derived from the cluster secret and bound to their index, so the store, which
// is outside the trust boundary, can neither read them nor move one to another place.
//
// Stored hashes are not stored: OpenAuditLog recomputes them from the records (as a file-backed
// log does), so they always describe what the store holds, and audit.New then checks the tree
// against the last signed head. They live in memory, 32 bytes each (about two per record), with
// the location of each record.
type AuditLog struct {
	as   *AuditStream
	kv   jetstream.KeyValue // Meta: the signed head
	seal cipher.AEAD
	ctx  context.Context
	wait time.Duration

	mu      sync.RWMutex
	locs    []recordLoc // by record index
	hashes  []tlog.Hash // by stored-hash index
	lastSeq uint64
	failed  error
	closed  bool

	cacheMu   sync.Mutex
	cacheSeq  uint64
	cacheRecs [][]byte
}

type recordLoc struct {
	seq uint64 // stream sequence of the message holding the record
	pos uint32 // position of the record in the message
}

const (
	auditHeadKey = "audit-head"
	// auditBatchMagic starts every message of the log.
	auditBatchMagic = "styx-audit-batch-v1\n"
	// auditRecordOverhead bounds the per-record framing: a length and the AEAD's nonce and tag.
	auditRecordOverhead = 4 + 24 + 16
	// maxAuditRecord caps one record (package audit caps records at 64 KiB).
	maxAuditRecord = MaxAuditEvent - len(auditBatchMagic) - 4 - auditRecordOverhead
)

// ErrAuditCorrupt reports a message in the audit stream that is not a batch this package wrote,
// or a record that does not authenticate: the store was tampered with or damaged.
var ErrAuditCorrupt = errors.New("store: audit log corrupt")

// OpenAuditLog opens the transparency log kept in the audit stream. seal must take nonces of at
// least 24 bytes (random nonces: use chacha20poly1305.NewX with a key derived from the cluster
// secret). It reads every record once, to recompute the stored hashes; damage or a record sealed
// under another key is ErrAuditCorrupt.
func (s *Store) OpenAuditLog(ctx context.Context, seal cipher.AEAD) (*AuditLog, error) {
	if seal == nil || seal.NonceSize() < 24 || seal.Overhead() != 16 {
		return nil, fmt.Errorf("%w: audit log sealing needs an AEAD with 24-byte nonces and 16-byte tags", ErrInvalid)
	}
	kv, err := s.bucket(Meta)
	if err != nil {
		return nil, err
	}
	l := &AuditLog{as: s.audit, kv: kv, seal: seal, ctx: context.WithoutCancel(ctx), wait: 30 * time.Second}
	if err := l.load(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

// load reads every message, checks and unseals every record and recomputes its stored hashes.
func (l *AuditLog) load(ctx context.Context) error {
	info, err := l.as.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("store: audit stream info: %w", err)
	}
	if info.State.Msgs > 0 && info.State.FirstSeq != 1 {
		return fmt.Errorf("%w: the stream starts at message %d: earlier records were removed", ErrAuditCorrupt, info.State.FirstSeq)
	}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := l.as.stream.GetMsg(ctx, seq)
		if err != nil {
			return fmt.Errorf("%w: message %d: %v", ErrAuditCorrupt, seq, err)
		}
		recs, err := l.parse(m.Data, int64(len(l.locs)))
		if err != nil {
			return fmt.Errorf("%w: message %d: %v", ErrAuditCorrupt, seq, err)
		}
		for i, rec := range recs {
			h, err := tlog.StoredHashes(int64(len(l.locs)), rec, l.hashReader())
			if err != nil {
				return fmt.Errorf("%w: hash record %d: %v", ErrAuditCorrupt, len(l.locs), err)
			}
			l.hashes = append(l.hashes, h...)
			l.locs = append(l.locs, recordLoc{seq: seq, pos: uint32(i)})
		}
		l.lastSeq = seq
	}
	return nil
}

func (l *AuditLog) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return l.readHashes(idx) })
}

// Size returns the number of records.
func (l *AuditLog) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return int64(len(l.locs))
}

// Append stores records at indexes Size(), Size()+1, … in one message (several when they
// exceed MaxAuditEvent; a crash between them keeps a prefix, never a gap). hashes are their stored
// hashes, computed by the caller. After an error the log refuses further appends until reopened.
func (l *AuditLog) Append(records [][]byte, hashes []tlog.Hash) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return errors.New("store: audit log closed")
	case l.failed != nil:
		return fmt.Errorf("store: audit log failed earlier, reopen it: %w", l.failed)
	}
	start := int64(len(l.locs))
	if want := tlog.StoredHashIndex(0, start+int64(len(records))) - tlog.StoredHashIndex(0, start); int64(len(hashes)) != want {
		return fmt.Errorf("%w: %d records need %d stored hashes, got %d", ErrInvalid, len(records), want, len(hashes))
	}
	for _, r := range records {
		if len(r) > maxAuditRecord {
			return fmt.Errorf("%w: audit record of %d bytes exceeds %d", ErrInvalid, len(r), maxAuditRecord)
		}
	}
	for len(records) > 0 {
		n, size := 0, len(auditBatchMagic)+4
		for n < len(records) && size+auditRecordOverhead+len(records[n]) <= MaxAuditEvent {
			size += auditRecordOverhead + len(records[n])
			n++
		}
		first := int64(len(l.locs))
		if err := l.publish(records[:n], size); err != nil {
			return err
		}
		// The stored hashes of records [first, first+n), so that Size and the hashes agree even
		// if a later message of this append fails.
		k := tlog.StoredHashIndex(0, first+int64(n)) - tlog.StoredHashIndex(0, first)
		l.hashes = append(l.hashes, hashes[:k]...)
		records, hashes = records[n:], hashes[k:]
	}
	return nil
}

// publish appends one message holding records, expecting the stream to end at l.lastSeq.
func (l *AuditLog) publish(records [][]byte, size int) error {
	msg, err := l.batch(records, int64(len(l.locs)), size)
	if err != nil {
		l.failed = err
		return err
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.wait)
	defer cancel()
	ack, err := l.as.js.Publish(ctx, auditSubject, msg, jetstream.WithExpectLastSequence(l.lastSeq))
	if err != nil {
		// Whether it was stored is unknown (a timeout after the write): refuse appends until reopened.
		l.failed = err
		return fmt.Errorf("store: append %d audit records: %w", len(records), err)
	}
	for i := range records {
		l.locs = append(l.locs, recordLoc{seq: ack.Sequence, pos: uint32(i)})
	}
	l.lastSeq = ack.Sequence
	return nil
}

// batch encodes records starting at index first as one message:
//
//	magic | uint32 BE count | count × (uint32 BE length | nonce | AEAD(record, ad = magic | index))
func (l *AuditLog) batch(records [][]byte, first int64, size int) ([]byte, error) {
	out := make([]byte, 0, size)
	out = append(out, auditBatchMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(records)))
	for i, r := range records {
		nonce := make([]byte, l.seal.NonceSize())
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(nonce)+len(r)+l.seal.Overhead()))
		out = append(out, nonce...)
		out = l.seal.Seal(out, nonce, r, recordAD(first+int64(i)))
	}
	return out, nil
}

// parse decodes and unseals a message whose first record has index first.
func (l *AuditLog) parse(msg []byte, first int64) ([][]byte, error) {
	if len(msg) < len(auditBatchMagic)+4 || string(msg[:len(auditBatchMagic)]) != auditBatchMagic {
		return nil, errors.New("not an audit batch")
	}
	rest := msg[len(auditBatchMagic):]
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if n == 0 || uint64(n)*auditRecordOverhead > uint64(len(rest)) {
		return nil, fmt.Errorf("batch claims %d records in %d bytes", n, len(rest))
	}
	recs := make([][]byte, 0, n)
	ns := l.seal.NonceSize()
	for i := range int64(n) {
		if len(rest) < 4 {
			return nil, fmt.Errorf("record %d: truncated", first+i)
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(size) > uint64(len(rest)) || int(size) < ns+l.seal.Overhead() {
			return nil, fmt.Errorf("record %d: bad length %d", first+i, size)
		}
		rec, err := l.seal.Open(nil, rest[:ns], rest[ns:size], recordAD(first+i))
		if err != nil {
			return nil, fmt.Errorf("record %d does not authenticate (changed, moved, or sealed under another key)", first+i)
		}
		recs = append(recs, rec)
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d bytes after the last record", len(rest))
	}
	return recs, nil
}

func recordAD(index int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(auditBatchMagic), uint64(index))
}

// ReadRecord returns the record at index.
func (l *AuditLog) ReadRecord(index int64) ([]byte, error) {
	l.mu.RLock()
	if index < 0 || index >= int64(len(l.locs)) {
		n := len(l.locs)
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: audit record %d of %d", ErrNotFound, index, n)
	}
	loc := l.locs[index]
	first := index - int64(loc.pos)
	l.mu.RUnlock()

	l.cacheMu.Lock()
	defer l.cacheMu.Unlock()
	if l.cacheSeq != loc.seq {
		ctx, cancel := context.WithTimeout(l.ctx, l.wait)
		defer cancel()
		m, err := l.as.stream.GetMsg(ctx, loc.seq)
		if err != nil {
			return nil, fmt.Errorf("store: read audit record %d: %w", index, err)
		}
		recs, err := l.parse(m.Data, first)
		if err != nil {
			return nil, fmt.Errorf("%w: message %d: %v", ErrAuditCorrupt, loc.seq, err)
		}
		l.cacheSeq, l.cacheRecs = loc.seq, recs
	}
	if int(loc.pos) >= len(l.cacheRecs) {
		return nil, fmt.Errorf("%w: message %d holds %d records, not %d", ErrAuditCorrupt, loc.seq, len(l.cacheRecs), loc.pos+1)
	}
	return l.cacheRecs[loc.pos], nil
}

// ReadHashes returns stored hashes by index (tlog.HashReader).
func (l *AuditLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.readHashes(indexes)
}

func (l *AuditLog) readHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d of %d", ErrNotFound, x, len(l.hashes))
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// SaveHead durably replaces the saved signed head. The head is signed, so it needs no sealing.
func (l *AuditLog) SaveHead(signed []byte) error {
	ctx, cancel := context.WithTimeout(l.ctx, l.wait)
	defer cancel()
	if _, err := l.kv.Put(ctx, auditHeadKey, signed); err != nil {
		return fmt.Errorf("store: save audit head: %w", err)
	}
	return nil
}

// LoadHead returns the saved signed head, or nil if none was saved.
func (l *AuditLog) LoadHead() ([]byte, error) {
	ctx, cancel := context.WithTimeout(l.ctx, l.wait)
	defer cancel()
	e, err := l.kv.Get(ctx, auditHeadKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: load audit head: %w", err)
	}
	return e.Value(), nil
}

// Close releases the log; the store stays open (the node closes it).
func (l *AuditLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}
