package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Ref names one record: a key of a bucket.
type Ref struct {
	Bucket Bucket
	Key    string
}

// MaxReadMany caps the keys ReadMany reads from one bucket. The server answers at most 1024
// keys per request and stops early past its pending-bytes limit (64 MiB by default); 64
// records of at most MaxValueSize stay well inside both.
const MaxReadMany = 64

// readManyTimeout bounds ReadMany when its context has no deadline.
const readManyTimeout = 5 * time.Second

// A Snapshot holds the records one ReadMany read. Each bucket's records were read in one
// request, at one point of that bucket's history (the server reads them under one lock); the
// buckets were read at the same time, each at its own point. A nil *Snapshot holds nothing.
type Snapshot struct {
	recs map[Ref]snapRecord
}

type snapRecord struct {
	data   []byte
	rev    uint64
	found  bool
	marker bool // the last message is a delete or purge marker
}

// has reports whether the snapshot read key of bucket b (found or not).
func (sn *Snapshot) has(b Bucket, key string) bool {
	if sn == nil {
		return false
	}
	_, ok := sn.recs[Ref{b, key}]
	return ok
}

// Get returns key of bucket b as Store.Get returned it when the snapshot was read: its
// value and revision, or ErrNotFound for a missing or deleted key. in is false, and nothing
// else is set, if the snapshot did not read that key.
func (sn *Snapshot) Get(b Bucket, key string) (value []byte, rev uint64, in bool, err error) {
	if !sn.has(b, key) {
		return nil, 0, false, nil
	}
	r := sn.recs[Ref{b, key}]
	if !r.found || r.marker {
		return nil, 0, true, fmt.Errorf("%w: %s/%s", ErrNotFound, b, key)
	}
	return r.data, r.rev, true, nil
}

// Version returns version register key as Store.Version returned it when the snapshot was
// read; in is false if the snapshot did not read it.
func (sn *Snapshot) Version(key string) (v uint64, payload []byte, in bool, err error) {
	v, payload, in, err = sn.register(Versions, key)
	return v, payload, in, err
}

// Counter returns use counter key as Store.Counter returned it when the snapshot was read (0
// if never reserved); in is false if the snapshot did not read it.
func (sn *Snapshot) Counter(key string) (n uint64, in bool, err error) {
	n, _, in, err = sn.register(Counters, key)
	if errors.Is(err, ErrNotFound) {
		return 0, in, nil
	}
	return n, in, err
}

func (sn *Snapshot) register(b Bucket, key string) (uint64, []byte, bool, error) {
	if !sn.has(b, key) {
		return 0, nil, false, nil
	}
	r := sn.recs[Ref{b, key}]
	switch {
	case !r.found:
		return 0, nil, true, fmt.Errorf("%w: %s/%s", ErrNotFound, b, key)
	case r.marker: // as readRegister: this package never deletes a register
		return 0, nil, true, fmt.Errorf("%w: %s/%s carries a delete or purge marker (possible rollback attempt)", ErrCorrupt, b, key)
	}
	v, payload, err := decodeVersion(r.data, b, key)
	return v, payload, true, err
}

// ReadMany reads refs at once: one request per bucket, the buckets' requests at the same
// time. A decision's reads (a Pad's record, revocation, policy and counters, for every input)
// then cost one round trip, not one each: the server answers one connection's requests one
// after another. Keys may repeat; at most MaxReadMany per bucket. A key that does not exist
// is in the snapshot as not found; an error from any bucket fails the whole read.
func (s *Store) ReadMany(ctx context.Context, refs []Ref) (*Snapshot, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	byBucket := map[Bucket][]string{}
	seen := map[Ref]bool{}
	for _, r := range refs {
		if _, ok := s.streams[r.Bucket]; !ok {
			return nil, fmt.Errorf("%w: unknown bucket %q", ErrInvalid, r.Bucket)
		}
		// A valid key has no wildcard: the server would otherwise read every key it matches.
		if err := checkKeyName(r.Key); err != nil {
			return nil, err
		}
		if seen[r] {
			continue
		}
		seen[r] = true
		byBucket[r.Bucket] = append(byBucket[r.Bucket], r.Key)
		if len(byBucket[r.Bucket]) > MaxReadMany {
			return nil, fmt.Errorf("%w: more than %d keys of %s in one read", ErrInvalid, MaxReadMany, r.Bucket)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readManyTimeout)
		defer cancel()
	}
	in, err := s.batchInbox()
	if err != nil {
		return nil, err
	}
	// Every bucket's request goes out before any reply is read: the server answers them one
	// after another anyway, and their replies queue meanwhile.
	reqs := make([]*bucketRead, 0, len(byBucket))
	defer func() {
		for _, r := range reqs {
			in.close(r.reply)
		}
	}()
	for b, keys := range byBucket {
		r, err := s.sendRead(in, b, keys)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
	}
	sn := &Snapshot{recs: make(map[Ref]snapRecord, len(seen))}
	for _, r := range reqs {
		if err := r.collect(ctx, sn); err != nil {
			return nil, err
		}
	}
	return sn, nil
}

// bucketRead is one bucket's request of a ReadMany.
type bucketRead struct {
	b       Bucket
	keys    []string
	reply   string
	replies chan *nats.Msg
}

// sendRead asks for the last message of every key of bucket b in one direct-get request
// ("multi_last"): the server sends one message per key found, then an end-of-batch status.
func (s *Store) sendRead(in *inbox, b Bucket, keys []string) (*bucketRead, error) {
	prefix := "$KV." + string(b) + "."
	subjects := make([]string, len(keys))
	for i, k := range keys {
		subjects[i] = prefix + k
	}
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
		Batch     int      `json:"batch"`
	}{subjects, len(subjects)})
	if err != nil {
		return nil, err
	}
	// Room for every reply the server may send: the dispatcher never blocks.
	r := &bucketRead{b: b, keys: keys, replies: make(chan *nats.Msg, len(keys)+1)}
	r.reply = in.open(r.replies)
	if err := s.nc.PublishRequest(jetstream.DefaultAPIPrefix+"DIRECT.GET.KV_"+string(b), r.reply, req); err != nil {
		in.close(r.reply)
		return nil, fmt.Errorf("store: read %s: %w", b, err)
	}
	return r, nil
}

// collect reads r's replies into sn, every key asked for: found, or not found.
func (r *bucketRead) collect(ctx context.Context, sn *Snapshot) error {
	b := r.b
	prefix := "$KV." + string(b) + "."
	for _, k := range r.keys {
		sn.recs[Ref{b, k}] = snapRecord{}
	}
	got := 0
	for {
		var m *nats.Msg
		select {
		case m = <-r.replies:
		case <-ctx.Done():
			return fmt.Errorf("store: read %s: %w", b, ctx.Err())
		}
		if status := m.Header.Get("Status"); status != "" {
			return endOfBatch(b, status, m, got)
		}
		key, ok := strings.CutPrefix(m.Header.Get(jetstream.SubjectHeader), prefix)
		rec, asked := sn.recs[Ref{b, key}]
		switch {
		case !ok || !asked:
			return fmt.Errorf("%w: %s: reply for subject %q, which was not asked for", ErrCorrupt, b, m.Header.Get(jetstream.SubjectHeader))
		case rec.found:
			return fmt.Errorf("%w: %s/%s: two replies", ErrCorrupt, b, key)
		}
		rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil || rev == 0 {
			return fmt.Errorf("%w: %s/%s: reply without a sequence", ErrCorrupt, b, key)
		}
		marker := m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != ""
		sn.recs[Ref{b, key}] = snapRecord{data: m.Data, rev: rev, found: true, marker: marker}
		got++
	}
}

// endOfBatch checks the status that ends a multi_last reply, after got records: 204 with
// nothing pending (every key found was sent), or 404 with none sent (none of the keys exists).
// Anything else, including a batch cut short, fails the read: a key left out must never read as
// missing (a revocation would).
func endOfBatch(b Bucket, status string, m *nats.Msg, got int) error {
	switch status {
	case "204":
		if p := m.Header.Get("Nats-Num-Pending"); p != "0" {
			return fmt.Errorf("store: read %s: the server cut the batch short (%s records pending)", b, p)
		}
		return nil
	case "404":
		if d := m.Header.Get("Description"); d != "No Results" || got > 0 {
			return fmt.Errorf("store: read %s: %s %s", b, status, d)
		}
		return nil
	}
	return fmt.Errorf("store: read %s: %s %s", b, status, m.Header.Get("Description"))
}

// batchInbox returns the store's inbox for batched replies, subscribing it on first use.
func (s *Store) batchInbox() (*inbox, error) {
	s.inboxOnce.Do(func() {
		in := &inbox{prefix: nats.NewInbox() + ".", byReply: map[string]chan *nats.Msg{}}
		sub, err := s.nc.Subscribe(in.prefix+"*", in.dispatch)
		if err == nil {
			// Replies to one request may come faster than the dispatcher hands them on.
			err = sub.SetPendingLimits(-1, -1)
		}
		if err != nil {
			s.inboxErr = fmt.Errorf("store: subscribe the read inbox: %w", err)
			return
		}
		s.inbox = in
	})
	if s.inboxErr != nil {
		return nil, s.inboxErr
	}
	return s.inbox, nil
}

// inbox dispatches the replies to batched reads, one reply subject per request.
type inbox struct {
	prefix  string
	mu      sync.Mutex
	n       uint64
	byReply map[string]chan *nats.Msg
}

func (in *inbox) open(ch chan *nats.Msg) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.n++
	subject := in.prefix + strconv.FormatUint(in.n, 36)
	in.byReply[subject] = ch
	return subject
}

func (in *inbox) close(subject string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.byReply, subject)
}

func (in *inbox) dispatch(m *nats.Msg) {
	in.mu.Lock()
	ch := in.byReply[m.Subject]
	in.mu.Unlock()
	if ch == nil {
		return // a request given up on
	}
	select {
	case ch <- m:
	default: // more replies than keys asked for: the reader fails on what it has
	}
}
