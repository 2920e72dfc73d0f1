// Package format parses and marshals the Pad v1 header exactly as docs/pad-format.md specifies.
// It knows bytes, not keys: it does no cryptography beyond decoding the signer's identity.
// Call Read to parse a header from the front of a Pad, and Header.Marshal to encode one.
package format

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/styx-tee/styx/party"
)

// Magic starts every Pad.
const Magic = "styx-pad"

// Version is the only format version this package reads and writes.
const Version = 1

// Limits of version 1 (docs/pad-format.md, "Limits").
const (
	ChunkSize       = 64 << 10
	MaxHeaderSize   = 128 << 10
	MaxPolicySize   = 64 << 10
	MaxTypeLen      = 255
	MaxParents      = 64
	MaxWraps        = 16
	MaxSize         = 1<<62 - 1
	IDSize          = 16
	DigestSize      = 32
	MACSize         = 32
	SignatureSize   = 64
	WrappedKeySize  = 48
	identityMaxSize = 1 << 12
)

// Encapsulation sizes of the KEMs a wrap may use.
const (
	EncSizeX25519 = 32
	EncSizeXWing  = 1120
)

var (
	// ErrTampered is the category of every Pad that is not what its signer sealed.
	ErrTampered = errors.New("tampered or corrupted")
	// ErrMalformed reports a header that does not follow the grammar. It is a kind of
	// ErrTampered: errors.Is(err, ErrTampered) holds for it too.
	ErrMalformed = fmt.Errorf("malformed header (%w)", ErrTampered)
	// ErrUnsupportedVersion reports a Pad written in a format version this build does not read.
	ErrUnsupportedVersion = errors.New("unsupported pad format version")
	// ErrTooLarge reports a field over its limit.
	ErrTooLarge = errors.New("over the format limit")
)

// A Parent is a reference from a derived Pad to one of its inputs.
type Parent struct {
	ID           [IDSize]byte
	PolicyDigest [DigestSize]byte
}

// A Wrap is the data key encrypted to one recipient with HPKE.
type Wrap struct {
	Recipient party.ID
	KEM       uint16
	Enc       []byte
	Key       [WrappedKeySize]byte
}

// A Header is a parsed Pad header. Fields hold exactly what is on the wire.
type Header struct {
	ID          [IDSize]byte
	Created     uint64
	Size        uint64
	Signer      *party.Identity
	ContentType string
	PolicyType  string
	Policy      []byte
	Parents     []Parent
	Wraps       []Wrap
	MAC         [MACSize]byte
	Signature   [SignatureSize]byte
}

// EncSize returns the encapsulation size of a KEM, or 0 if v1 does not allow it.
func EncSize(kem uint16) int {
	switch kem {
	case party.KEMX25519:
		return EncSizeX25519
	case party.KEMXWing:
		return EncSizeXWing
	}
	return 0
}

// Check validates the header against every rule of the grammar that Marshal cannot express by
// construction: lengths, limits, character sets, order and uniqueness. Its errors wrap
// ErrMalformed.
func (h *Header) Check() error {
	if err := h.Validate(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrMalformed)
	}
	return nil
}

// Validate is Check for a header being built: its errors wrap ErrTooLarge for a field over its
// limit and no sentinel otherwise.
func (h *Header) Validate() error {
	if h.Signer == nil {
		return invalid("no signer")
	}
	if h.Created >= 1<<63 {
		return invalid("creation time %d out of range", h.Created)
	}
	if h.Size > MaxSize {
		return fmt.Errorf("plaintext size %d over %d: %w", h.Size, uint64(MaxSize), ErrTooLarge)
	}
	if err := checkType("content type", h.ContentType); err != nil {
		return err
	}
	if err := checkType("policy type", h.PolicyType); err != nil {
		return err
	}
	if len(h.Policy) == 0 {
		return invalid("empty policy")
	}
	if len(h.Policy) > MaxPolicySize {
		return overLimit("policy", len(h.Policy), MaxPolicySize)
	}
	if err := checkParents(h.Parents); err != nil {
		return err
	}
	return checkWraps(h.Wraps)
}

func checkType(what, s string) error {
	if s == "" {
		return invalid("empty %s", what)
	}
	if len(s) > MaxTypeLen {
		return overLimit(what, len(s), MaxTypeLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return invalid("%s has a byte 0x%02x outside printable ASCII", what, s[i])
		}
	}
	return nil
}

func checkParents(ps []Parent) error {
	if len(ps) > MaxParents {
		return overLimit("parent list", len(ps), MaxParents)
	}
	for i := 1; i < len(ps); i++ {
		if bytes.Compare(ps[i-1].ID[:], ps[i].ID[:]) >= 0 {
			return invalid("parents not sorted or repeated at %d", i)
		}
	}
	return nil
}

func checkWraps(ws []Wrap) error {
	if len(ws) > MaxWraps {
		return overLimit("key wrap list", len(ws), MaxWraps)
	}
	for i, w := range ws {
		n := EncSize(w.KEM)
		if n == 0 {
			return invalid("key wrap %d uses unknown kem 0x%04x", i, w.KEM)
		}
		if len(w.Enc) != n {
			return invalid("key wrap %d encapsulation is %d bytes, want %d", i, len(w.Enc), n)
		}
		if i > 0 && bytes.Compare(ws[i-1].Recipient[:], w.Recipient[:]) >= 0 {
			return invalid("key wraps not sorted or repeated at %d", i)
		}
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrMalformed)
}

func tooLarge(what string, n, max int) error {
	return fmt.Errorf("%s is %d, over the limit of %d: %w (%w)", what, n, max, ErrTooLarge, ErrMalformed)
}

func invalid(format string, args ...any) error { return fmt.Errorf(format, args...) }

func overLimit(what string, n, max int) error {
	return fmt.Errorf("%s is %d, over the limit of %d: %w", what, n, max, ErrTooLarge)
}
