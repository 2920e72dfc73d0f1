package party

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
)

// IDPrefix starts every short party id string.
const IDPrefix = "styxid1"

// An ID is the short fingerprint of an identity: SHA-256 over its binary form. Policies, logs and
// receipts name parties by ID; sealing and verifying need the full Identity.
type ID [32]byte

// String returns "styxid1" followed by the base32 of the id and a 4-byte checksum.
func (id ID) String() string {
	// Hot: the engine names the caller of every query by it. One hash of a stack buffer and
	// one encoding straight into the result, the same bytes as checksum and b32 + ToLower.
	var buf [len("styx id") + 32 + 4]byte
	copy(buf[:], "styx id")
	copy(buf[len("styx id"):], id[:])
	sum := sha256.Sum256(buf[:len("styx id")+32])
	copy(buf[len("styx id")+32:], sum[:4])
	out := make([]byte, len(IDPrefix)+b32lower.EncodedLen(36))
	copy(out, IDPrefix)
	b32lower.Encode(out[len(IDPrefix):], buf[len("styx id"):])
	return string(out)
}

// b32lower is b32 with a lowercase alphabet: what strings.ToLower makes of b32's output.
var b32lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it accepts what ParseID accepts.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses a short party id ("styxid1…") or, for convenience, a full identity
// ("styx1…"), whose id it returns.
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, IDPrefix) {
		if strings.HasPrefix(s, IdentityPrefix) {
			ident, err := ParseIdentity(s)
			if err != nil {
				return ID{}, err
			}
			return ident.ID(), nil
		}
		return ID{}, fmt.Errorf("party: id %q does not start with %q: %w", abbrev(s), IDPrefix, ErrMalformed)
	}
	if len(s) > 128 {
		return ID{}, fmt.Errorf("party: id is %d characters, too long for an id: %w", len(s), ErrMalformed)
	}
	raw, err := decodeB32(s[len(IDPrefix):])
	if err != nil {
		return ID{}, fmt.Errorf("party: id %q is not valid base32 (%v): %w", abbrev(s), err, ErrMalformed)
	}
	if len(raw) != len(ID{})+4 {
		return ID{}, fmt.Errorf("party: id %q has %d bytes, want %d (truncated or extended?): %w", abbrev(s), len(raw), len(ID{})+4, ErrMalformed)
	}
	var id ID
	copy(id[:], raw)
	want := checksum("styx id", id[:])
	if subtle.ConstantTimeCompare(raw[len(id):], want[:]) != 1 {
		return ID{}, fmt.Errorf("party: id %q: %w (check for a typo)", abbrev(s), ErrChecksum)
	}
	return id, nil
}
