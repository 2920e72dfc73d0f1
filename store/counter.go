package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// casAttempts bounds a compare-and-set loop. Each lost round means another
// writer won, so the system as a whole always progresses; the bound only
// stops one caller from spinning forever under extreme contention.
const casAttempts = 200

// Reserve atomically adds n to the use counter key, only if the result stays
// at or below limit, and returns the new value. When it would exceed limit it
// writes nothing and returns a *LimitError (ErrLimitReached). Counters only
// ever go up: there is no way to decrement or delete one through this
// package, so a crash after Reserve still counts the use (conservative).
func (s *Store) Reserve(ctx context.Context, key string, n, limit uint64) (uint64, error) {
	if n == 0 {
		return 0, fmt.Errorf("%w: Reserve of 0 uses", ErrInvalid)
	}
	var result uint64
	err := s.casLoop(ctx, Counters, key, func(cur uint64, _ []byte, found bool) ([]byte, error) {
		if cur > math.MaxUint64-n || cur+n > limit {
			return nil, &LimitError{Key: key, Current: cur, Requested: n, Limit: limit}
		}
		result = cur + n
		return encodeVersion(result, nil), nil
	})
	return result, err
}

// Counter returns the current value of a use counter (0 if never reserved).
func (s *Store) Counter(ctx context.Context, key string) (uint64, error) {
	v, _, err := s.register(ctx, Counters, key)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return v, err
}

// AdvanceVersion sets the version register key to v together with value
// (for policies: the signed policy document), only if v is strictly greater
// than the current version. Presenting an older or equal version again
// returns a *StaleError (ErrStale): rollback and replay are refused.
func (s *Store) AdvanceVersion(ctx context.Context, key string, v uint64, value []byte) error {
	if v == 0 {
		return fmt.Errorf("%w: version 0", ErrInvalid)
	}
	if err := checkValue(append(make([]byte, 8, 8+len(value)), value...)); err != nil {
		return err
	}
	return s.casLoop(ctx, Versions, key, func(cur uint64, _ []byte, found bool) ([]byte, error) {
		if found && v <= cur {
			return nil, &StaleError{Key: key, Current: cur, Presented: v}
		}
		return encodeVersion(v, value), nil
	})
}

// Version returns the current version of register key and the value stored
// with it. A register never advanced yields ErrNotFound.
func (s *Store) Version(ctx context.Context, key string) (uint64, []byte, error) {
	return s.register(ctx, Versions, key)
}

func (s *Store) register(ctx context.Context, b Bucket, key string) (uint64, []byte, error) {
	v, payload, _, err := s.readRegister(ctx, b, key)
	return v, payload, err
}

// next computes the value to write from the current number and payload.
type next func(cur uint64, payload []byte, found bool) ([]byte, error)

// casLoop reads key, asks f for the new value, and writes it with
// compare-and-set, retrying with jittered backoff when another writer got
// there first. For a counter, the first attempt starts from the value and
// revision this store last saw (counterCache) instead of reading: on one
// node that guess is right, and a write by anyone else makes the
// compare-and-set fail, after which the loop reads as usual.
func (s *Store) casLoop(ctx context.Context, b Bucket, key string, f next) error {
	kv, err := s.bucket(b)
	if err != nil {
		return err
	}
	if err := checkKeyName(key); err != nil {
		return err
	}
	var guess *register
	if b == Counters {
		guess = s.counters.get(key)
	}
	for attempt := range casAttempts {
		wrote, err := s.casOnce(ctx, kv, b, key, f, guess)
		if b == Counters {
			if err == nil {
				s.counters.put(key, wrote)
			} else {
				s.counters.drop(key)
			}
		}
		if guess != nil && err != nil {
			// A stale guess, or one f refused (a limit reached, say): decide again on what
			// the store holds, read, without waiting.
			guess = nil
			continue
		}
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrExists) {
			return err
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w: %s/%s: gave up after %d compare-and-set attempts", ErrContention, b, key, casAttempts)
}

// casOnce makes one compare-and-set of key from its current register, read
// from the store unless guess gives it, and returns what it wrote.
func (s *Store) casOnce(ctx context.Context, kv jetstream.KeyValue, b Bucket, key string, f next, guess *register) (register, error) {
	var cur register
	var payload []byte
	found := true
	if guess != nil {
		cur = *guess
	} else {
		var err error
		cur.v, payload, cur.rev, err = s.readRegister(ctx, b, key)
		found = err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return register{}, err
		}
	}
	val, err := f(cur.v, payload, found)
	if err != nil {
		return register{}, err
	}
	var rev uint64
	if found {
		rev, err = kv.Update(ctx, key, val, cur.rev)
	} else {
		rev, err = kv.Create(ctx, key, val)
	}
	if err != nil {
		return register{}, mapErr(err, b, key)
	}
	return register{v: binary.BigEndian.Uint64(val), rev: rev}, nil
}

// A register is a counter's or version register's number and the
// revision (stream sequence) of the record that holds it.
type register struct{ v, rev uint64 }

// counterCache remembers the register of each counter this store last
// wrote, as the first guess of the next compare-and-set on it (casLoop). It
// is never trusted for a read: Counter reads the store.
type counterCache struct {
	mu sync.Mutex
	m  map[string]register
}

// counterCacheMax bounds the cache; past it, it starts again empty.
const counterCacheMax = 1 << 16

func (c *counterCache) get(key string) *register {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[key]; ok {
		return &r
	}
	return nil
}

func (c *counterCache) put(key string, r register) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= counterCacheMax {
		c.m = make(map[string]register)
	}
	c.m[key] = r
}

func (c *counterCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// readRegister reads a counter or version register from its stream
// directly rather than through the KV API, which reports a deleted key as
// simply missing: for a register, a delete marker is tampering (this
// package never deletes one) and treating it as zero would roll it back.
func (s *Store) readRegister(ctx context.Context, b Bucket, key string) (uint64, []byte, uint64, error) {
	if err := s.alive(); err != nil {
		return 0, nil, 0, err
	}
	if err := checkKeyName(key); err != nil {
		return 0, nil, 0, err
	}
	m, err := s.streams[b].GetLastMsgForSubject(ctx, "$KV."+string(b)+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil, 0, fmt.Errorf("%w: %s/%s", ErrNotFound, b, key)
	}
	if err != nil {
		return 0, nil, 0, fmt.Errorf("store: read %s/%s: %w", b, key, err)
	}
	if m.Header.Get("KV-Operation") != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
		return 0, nil, 0, fmt.Errorf("%w: %s/%s carries a delete or purge marker (possible rollback attempt)",
			ErrCorrupt, b, key)
	}
	v, payload, err := decodeVersion(m.Data, b, key)
	return v, payload, m.Sequence, err
}

// backoff sleeps a random time that grows with attempt, capped at ~20 ms.
func backoff(ctx context.Context, attempt int) error {
	ceiling := time.Duration(1<<min(attempt, 10)) * 20 * time.Microsecond
	t := time.NewTimer(rand.N(ceiling) + time.Microsecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// encodeVersion lays out a register: 8-byte big-endian number, then payload.
func encodeVersion(v uint64, payload []byte) []byte {
	out := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint64(out, v)
	return append(out, payload...)
}

func decodeVersion(raw []byte, b Bucket, key string) (uint64, []byte, error) {
	if len(raw) < 8 || (b == Counters && len(raw) != 8) {
		return 0, nil, fmt.Errorf("%w: %s/%s: %d bytes", ErrCorrupt, b, key, len(raw))
	}
	return binary.BigEndian.Uint64(raw), raw[8:], nil
}
