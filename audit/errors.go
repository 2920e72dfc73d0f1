package audit

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed reports an event record, receipt or signed head that does not parse, exceeds a
	// size cap or is not in canonical form.
	ErrMalformed = errors.New("malformed")
	// ErrTampered reports data that parses but does not verify: a proof that does not lead to the
	// signed root, a receipt field that differs from the logged record.
	ErrTampered = errors.New("tampered")
	// ErrBadSignature reports a tree head that is not signed by the expected cluster key.
	ErrBadSignature = errors.New("bad tree head signature")
	// ErrRollback reports a tree head smaller than one the client already saw.
	ErrRollback = errors.New("log rolled back")
	// ErrFork reports a tree head that does not extend the one the client already saw.
	ErrFork = errors.New("log forked")
	// ErrCorrupt reports on-disk log state that cannot be a torn tail of an unacknowledged
	// append: damaged acknowledged records, or records missing under a head the log signed.
	ErrCorrupt = errors.New("audit log corrupt")
	// ErrNotFound reports an index at or beyond the log's size.
	ErrNotFound = errors.New("no such log entry")
	// ErrClosed reports use of a closed log.
	ErrClosed = errors.New("audit log closed")
	// ErrNoSigner reports a head-signing request on a log opened without a Signer.
	ErrNoSigner = errors.New("audit log has no signer")
)

// A TamperError names the part of a receipt or proof that failed verification. It unwraps to
// ErrTampered.
type TamperError struct {
	Field  string // "record", "inclusion proof", "claims.job", …
	Reason string
}

func (e *TamperError) Error() string {
	return fmt.Sprintf("audit: %s tampered: %s", e.Field, e.Reason)
}

func (e *TamperError) Unwrap() error { return ErrTampered }

func tampered(field, format string, args ...any) error {
	return &TamperError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// malformed wraps ErrMalformed with context.
func malformed(what, format string, args ...any) error {
	return fmt.Errorf("audit: %s: %s: %w", what, fmt.Sprintf(format, args...), ErrMalformed)
}
