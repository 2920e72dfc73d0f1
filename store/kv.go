package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket names a key-value bucket. Only the buckets declared here exist.
type Bucket string

// The node's buckets. Every bucket keeps one revision per key (history 1) in
// file storage; values are opaque bytes that callers seal and authenticate.
const (
	// Pads holds Pad metadata (header, owner, parents, blob id), keyed by
	// Pad id.
	Pads Bucket = "styx_pads"
	// Programs holds metadata for uploaded WebAssembly programs, keyed by
	// their hash.
	Programs Bucket = "styx_programs"
	// JobRecords holds job status and results, keyed by job id.
	JobRecords Bucket = "styx_job_records"
	// Revocations holds signed revocations, keyed by Pad id. Revocations
	// are never undone: create them with Create.
	Revocations Bucket = "styx_revocations"
	// DataKeys holds derived Pads' data keys, wrapped by the engine under
	// the cluster key. Shred one with Purge (crypto-shredding).
	DataKeys Bucket = "styx_data_keys"
	// Meta holds node-level records (latest signed audit tree head, schema
	// version, …).
	Meta Bucket = "styx_meta"
	// Nonces is reserved for a cluster-wide replay cache: request nonces,
	// expiring after NonceTTL. Nothing writes it yet: the API's nonce cache
	// is per node, in memory (docs/rationale-api.md).
	Nonces Bucket = "styx_nonces"
	// Counters holds use counters. Only Reserve writes it: counters never
	// go backwards, so the generic writers refuse it.
	Counters Bucket = "styx_counters"
	// Versions holds version registers (policy versions with the current
	// policy). Only AdvanceVersion writes it.
	Versions Bucket = "styx_versions"
)

// NonceTTL is how long the Nonces bucket remembers an entry. The API must
// refuse requests older than this.
const NonceTTL = 15 * time.Minute

// MaxValueSize caps a key-value record. Large data belongs in Blobs.
const MaxValueSize = 256 << 10

type bucketSpec struct {
	ttl       time.Duration
	monotonic bool
}

var buckets = map[Bucket]bucketSpec{
	Pads:        {},
	Programs:    {},
	JobRecords:  {},
	Revocations: {},
	DataKeys:    {},
	Meta:        {},
	Nonces:      {ttl: NonceTTL},
	Counters:    {monotonic: true},
	Versions:    {monotonic: true},
}

// createBuckets creates (or updates) every bucket's stream concurrently:
// each creation waits on an fsync, so doing them one by one multiplies
// startup time.
func (s *Store) createBuckets(ctx context.Context) error {
	type result struct {
		b      Bucket
		stream jetstream.Stream
		kv     jetstream.KeyValue
		err    error
	}
	results := make(chan result, len(buckets))
	for b, spec := range buckets {
		go func() {
			r := result{b: b}
			r.stream, r.err = s.js.CreateOrUpdateStream(ctx, bucketStream(b, spec))
			if r.err == nil {
				r.kv, r.err = s.js.KeyValue(ctx, string(b))
			}
			results <- r
		}()
	}
	s.kvs = make(map[Bucket]jetstream.KeyValue, len(buckets))
	s.streams = make(map[Bucket]jetstream.Stream, len(buckets))
	var errs []error
	for range buckets {
		r := <-results
		if r.err != nil {
			errs = append(errs, fmt.Errorf("store: create bucket %s: %w", r.b, r.err))
			continue
		}
		s.kvs[r.b], s.streams[r.b] = r.kv, r.stream
	}
	return errors.Join(errs...)
}

// bucketStream is the stream behind a bucket: the layout nats.go's
// CreateKeyValue uses, except that erasable buckets leave DenyDelete off
// so that Purge can erase a value in place (NATS cannot lift DenyDelete
// later). Monotonic buckets keep it: the server itself then refuses to
// delete a counter or a version.
func bucketStream(b Bucket, spec bucketSpec) jetstream.StreamConfig {
	dup := 2 * time.Minute
	if spec.ttl > 0 && spec.ttl < dup {
		dup = spec.ttl
	}
	return jetstream.StreamConfig{
		Name:              "KV_" + string(b),
		Subjects:          []string{"$KV." + string(b) + ".>"},
		MaxMsgsPerSubject: 1,
		MaxBytes:          -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		MaxAge:            spec.ttl,
		MaxMsgSize:        MaxValueSize,
		Storage:           jetstream.FileStorage,
		Replicas:          1,
		AllowRollup:       !spec.monotonic,
		DenyPurge:         spec.monotonic,
		DenyDelete:        spec.monotonic,
		Duplicates:        dup,
		AllowDirect:       true,
		Discard:           jetstream.DiscardNew,
	}
}

func (s *Store) bucket(b Bucket) (jetstream.KeyValue, error) {
	if err := s.alive(); err != nil {
		return nil, err
	}
	kv, ok := s.kvs[b]
	if !ok {
		return nil, fmt.Errorf("%w: unknown bucket %q", ErrInvalid, b)
	}
	return kv, nil
}

func (s *Store) writable(b Bucket) (jetstream.KeyValue, error) {
	if buckets[b].monotonic {
		return nil, fmt.Errorf("%w: %s: use Reserve or AdvanceVersion", ErrMonotonic, b)
	}
	return s.bucket(b)
}

// ValidKey reports whether key can name a record: 1 to 512 bytes of
// [A-Za-z0-9_=/.-], no leading, trailing or doubled dot (dots separate
// tokens, as in "pad.<id>.use").
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > 512 || key[0] == '.' || key[len(key)-1] == '.' ||
		strings.Contains(key, "..") {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '=', c == '/', c == '.':
		default:
			return false
		}
	}
	return true
}

func checkKeyName(key string) error {
	if !ValidKey(key) {
		return fmt.Errorf("%w: key %q", ErrInvalid, key)
	}
	return nil
}

func checkValue(v []byte) error {
	if len(v) > MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes exceeds %d", ErrInvalid, len(v), MaxValueSize)
	}
	return nil
}

// Get returns the current value of key and its revision. A missing or
// deleted key yields ErrNotFound.
func (s *Store) Get(ctx context.Context, b Bucket, key string) ([]byte, uint64, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return nil, 0, err
	}
	if err := checkKeyName(key); err != nil {
		return nil, 0, err
	}
	e, err := kv.Get(ctx, key)
	if err != nil {
		return nil, 0, mapErr(err, b, key)
	}
	return e.Value(), e.Revision(), nil
}

// Create stores value under key only if key does not exist (or was
// deleted). It returns the new revision, or ErrExists.
func (s *Store) Create(ctx context.Context, b Bucket, key string, value []byte) (uint64, error) {
	kv, err := s.writable(b)
	if err != nil {
		return 0, err
	}
	if err := errors.Join(checkKeyName(key), checkValue(value)); err != nil {
		return 0, err
	}
	rev, err := kv.Create(ctx, key, value)
	return rev, mapErr(err, b, key)
}

// Update replaces key's value only if its current revision is expected
// (compare-and-set). It returns the new revision, or ErrConflict.
func (s *Store) Update(ctx context.Context, b Bucket, key string, value []byte, expected uint64) (uint64, error) {
	kv, err := s.writable(b)
	if err != nil {
		return 0, err
	}
	if err := errors.Join(checkKeyName(key), checkValue(value)); err != nil {
		return 0, err
	}
	if expected == 0 {
		return 0, fmt.Errorf("%w: Update needs a revision; use Create", ErrInvalid)
	}
	rev, err := kv.Update(ctx, key, value, expected)
	return rev, mapErr(err, b, key)
}

// Put stores value under key unconditionally and returns the new revision.
// Prefer Create or Update wherever a lost update would matter.
func (s *Store) Put(ctx context.Context, b Bucket, key string, value []byte) (uint64, error) {
	kv, err := s.writable(b)
	if err != nil {
		return 0, err
	}
	if err := errors.Join(checkKeyName(key), checkValue(value)); err != nil {
		return 0, err
	}
	rev, err := kv.Put(ctx, key, value)
	return rev, mapErr(err, b, key)
}

// Delete marks key deleted. With history 1 the previous value is dropped
// from the stream, but its bytes may linger on disk until the block is
// compacted; use Purge to erase them.
func (s *Store) Delete(ctx context.Context, b Bucket, key string) error {
	kv, err := s.writable(b)
	if err != nil {
		return err
	}
	if err := checkKeyName(key); err != nil {
		return err
	}
	return mapErr(kv.Delete(ctx, key), b, key)
}

// Keys lists the live keys of b that start with prefix ("" for all),
// sorted. A prefix ending in "." is matched by the server; any other prefix
// is filtered here after listing.
func (s *Store) Keys(ctx context.Context, b Bucket, prefix string) ([]string, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return nil, err
	}
	filter := ">"
	if strings.HasSuffix(prefix, ".") && ValidKey(strings.TrimSuffix(prefix, ".")) {
		filter = prefix + ">"
	}
	keys, err := listKeys(ctx, kv, filter)
	if err != nil {
		return nil, fmt.Errorf("store: list %s: %w", b, err)
	}
	out := keys[:0]
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out, nil
}

func listKeys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	l, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	defer l.Stop()
	seen := map[string]bool{}
	var keys []string
	for k := range l.Keys() {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(keys)
	return keys, nil
}

// mapErr turns nats.go KV errors into this package's sentinels.
func mapErr(err error, b Bucket, key string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("%w: %s/%s", ErrNotFound, b, key)
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return fmt.Errorf("%w: %s/%s", ErrConflict, b, key)
	case errors.Is(err, jetstream.ErrKeyExists):
		return fmt.Errorf("%w: %s/%s", ErrExists, b, key)
	case errors.Is(err, jetstream.ErrInvalidKey):
		return fmt.Errorf("%w: key %q", ErrInvalid, key)
	}
	return fmt.Errorf("store: %s/%s: %w", b, key, err)
}

// KeyPart encodes an arbitrary string (a party identity, a purpose) as one
// key token of at most 161 bytes: "b" and its unpadded base64url for
// strings up to 120 bytes, "h" and the base64url of its sha256 for longer
// ones. Distinct strings give distinct tokens (up to sha256 collisions).
// Build keys as "use." + padID + "." + KeyPart(querier).
func KeyPart(s string) string {
	if len(s) <= 120 {
		return "b" + base64.RawURLEncoding.EncodeToString([]byte(s))
	}
	h := sha256.Sum256([]byte(s))
	return "h" + base64.RawURLEncoding.EncodeToString(h[:])
}
