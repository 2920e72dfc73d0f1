// Package pad seals and opens Pads: an encrypted payload with its sticky policy bound to it by a
// MAC and the signer's signature, and its data key wrapped to each recipient with HPKE. The format
// is specified in docs/pad-format.md.
//
// Start with Seal to create a Pad, Open to read one with a party key, and Inspect to look at a
// header (and check its signature) without any key. The engine, which keeps the data keys of
// derived Pads itself, uses OpenWithKey.
//
// Nothing is released before it authenticates: Open and Inspect check the signature (and Open
// the MAC) before they return a Header, and the payload reader returns a chunk only after that
// chunk authenticates. Every failure unwraps to one of the sentinel errors below.
package pad

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/styx-tee/styx/pad/internal/format"
	"github.com/styx-tee/styx/pad/internal/stream"
	"github.com/styx-tee/styx/party"
)

// Limits of format version 1.
const (
	ChunkSize     = format.ChunkSize     // plaintext bytes per payload chunk
	MaxHeaderSize = format.MaxHeaderSize // bytes in a whole header
	MaxPolicySize = format.MaxPolicySize // bytes of policy
	MaxTypeLen    = format.MaxTypeLen    // bytes of content type or policy type
	MaxParents    = format.MaxParents    // parent references of a derived Pad
	MaxWraps      = format.MaxWraps      // key wraps (recipients)
	MaxSize       = format.MaxSize       // plaintext bytes
)

// Version is the Pad format version this package writes.
const Version = format.Version

var (
	// ErrTampered reports a Pad that is not what its signer sealed: a bad signature, MAC or key
	// wrap, a payload chunk that does not authenticate, a truncated or extended payload. A
	// malformed header is tampering too.
	ErrTampered = format.ErrTampered
	// ErrMalformed reports a header that does not parse. errors.Is(err, ErrTampered) also holds.
	ErrMalformed = format.ErrMalformed
	// ErrUnsupportedVersion reports a Pad of a format version this build does not read.
	ErrUnsupportedVersion = format.ErrUnsupportedVersion
	// ErrTooLarge reports a field over its limit (see the Max constants).
	ErrTooLarge = format.ErrTooLarge
	// ErrNotRecipient reports a Pad that has no key wrap for the key trying to open it.
	ErrNotRecipient = errors.New("not a recipient of this pad")
	// ErrInvalidOptions reports SealOptions that cannot make a valid Pad, or a missing key.
	ErrInvalidOptions = errors.New("invalid seal options")
	// ErrSizeMismatch reports a Seal source that yields fewer or more bytes than SealOptions.Size.
	ErrSizeMismatch = stream.ErrSize
)

// An Error is a failure of a Pad operation. It unwraps to a sentinel (ErrTampered,
// ErrNotRecipient, …) and says in its message what exactly failed.
type Error struct {
	Op  string // "seal", "open" or "inspect"
	Err error  // the detail, wrapping the sentinel
}

func (e *Error) Error() string { return "pad: " + e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func opErr(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: op, Err: err}
}

func tampered(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrTampered)
}

// A DataKey is the 32-byte key a Pad's MAC key and payload key derive from. It never prints:
// String and LogValue redact it.
type DataKey [32]byte

// NewDataKey returns a fresh random data key.
func NewDataKey() *DataKey {
	k := new(DataKey)
	rand.Read(k[:])
	return k
}

func (k *DataKey) String() string       { return "pad.DataKey(redacted)" }
func (k *DataKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// A ParentRef names one input of a derived Pad: its id and the digest of its policy when it was
// used.
type ParentRef struct {
	ID           ID
	PolicyDigest [32]byte
}

// A KeyWrap says that the data key is wrapped to a recipient with a KEM. The wrapped bytes stay
// inside the package.
type KeyWrap struct {
	Recipient party.ID
	KEM       uint16
}

// A Header is the authenticated header of a Pad: everything about it but the payload.
type Header struct {
	ID          ID
	Signer      *party.Identity // the owner, or the cluster for a derived Pad
	CreatedAt   time.Time
	ContentType string
	Size        int64 // plaintext bytes
	PolicyType  string
	Policy      []byte
	Parents     []ParentRef
	Wraps       []KeyWrap
	// MACVerified is true when the header MAC was checked with the data key (Open, OpenWithKey);
	// Inspect cannot check it and leaves it false.
	MACVerified bool

	raw []byte
}

// Derived reports whether the Pad was derived from other Pads (it has parents); its Signer is then
// the cluster that derived it.
func (h *Header) Derived() bool { return len(h.Parents) > 0 }

// PolicyDigest returns the SHA-256 of the policy bytes.
func (h *Header) PolicyDigest() [32]byte { return sha256.Sum256(h.Policy) }

// Bytes returns the encoded header exactly as it is on the wire.
func (h *Header) Bytes() []byte { return append([]byte(nil), h.raw...) }

// Recipients returns the party ids the data key is wrapped to.
func (h *Header) Recipients() []party.ID {
	ids := make([]party.ID, len(h.Wraps))
	for i, w := range h.Wraps {
		ids[i] = w.Recipient
	}
	return ids
}

// IsRecipient reports whether the Pad has a key wrap for id.
func (h *Header) IsRecipient(id party.ID) bool {
	for _, w := range h.Wraps {
		if w.Recipient == id {
			return true
		}
	}
	return false
}

// PayloadSize returns the number of payload bytes that follow the header.
func (h *Header) PayloadSize() int64 { return int64(stream.EncryptedSize(uint64(h.Size))) }

func headerFrom(f *format.Header, raw []byte) *Header {
	h := &Header{
		ID:          ID(f.ID),
		Signer:      f.Signer,
		CreatedAt:   time.Unix(int64(f.Created), 0).UTC(),
		ContentType: f.ContentType,
		Size:        int64(f.Size),
		PolicyType:  f.PolicyType,
		Policy:      f.Policy,
		raw:         raw,
	}
	for _, p := range f.Parents {
		h.Parents = append(h.Parents, ParentRef{ID: ID(p.ID), PolicyDigest: p.PolicyDigest})
	}
	for _, w := range f.Wraps {
		h.Wraps = append(h.Wraps, KeyWrap{Recipient: w.Recipient, KEM: w.KEM})
	}
	return h
}
