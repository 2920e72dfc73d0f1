package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that falls into one
// of these categories wraps the matching sentinel, so test with errors.Is.
var (
	// ErrNotFound: the key, blob or message does not exist (or was deleted).
	ErrNotFound = errors.New("store: not found")
	// ErrExists: Create found the key or blob already present.
	ErrExists = errors.New("store: already exists")
	// ErrConflict: a compare-and-set saw a revision other than the expected one.
	ErrConflict = errors.New("store: revision conflict")
	// ErrLimitReached: Reserve would take a counter above its limit.
	ErrLimitReached = errors.New("store: use limit reached")
	// ErrStale: AdvanceVersion was given a version not above the current one.
	ErrStale = errors.New("store: version not newer than current")
	// ErrContention: a compare-and-set loop gave up after its retry budget.
	ErrContention = errors.New("store: too much contention")
	// ErrWrongKey: the encryption key does not open this store.
	ErrWrongKey = errors.New("store: wrong encryption key")
	// ErrInvalid: a bucket, key, blob id or argument is malformed.
	ErrInvalid = errors.New("store: invalid argument")
	// ErrMonotonic: a generic write was attempted on a bucket that only
	// moves forward (counters, versions).
	ErrMonotonic = errors.New("store: bucket is monotonic")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrLocked: another process holds this store's directory.
	ErrLocked = errors.New("store: directory in use by another process")
	// ErrCorrupt: a stored value does not decode.
	ErrCorrupt = errors.New("store: corrupt value")
)

// LimitError details a refused reservation. It unwraps to ErrLimitReached.
type LimitError struct {
	Key       string
	Current   uint64
	Requested uint64
	Limit     uint64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("store: counter %q at %d: reserving %d more would exceed limit %d",
		e.Key, e.Current, e.Requested, e.Limit)
}

func (e *LimitError) Unwrap() error { return ErrLimitReached }

// StaleError details a refused version advance. It unwraps to ErrStale.
type StaleError struct {
	Key       string
	Current   uint64
	Presented uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("store: version register %q is at %d: version %d refused (rollback or replay)",
		e.Key, e.Current, e.Presented)
}

func (e *StaleError) Unwrap() error { return ErrStale }
