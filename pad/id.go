package pad

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// IDPrefix starts the string form of every Pad id.
const IDPrefix = "styxpad1"

// An ID is the random 16-byte identifier of a Pad.
type ID [16]byte

// ErrInvalidID reports a string that is not a Pad id.
var ErrInvalidID = errors.New("invalid pad id")

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a fresh random Pad id.
func NewID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

func (id ID) checksum() [4]byte {
	s := sha256.Sum256(append([]byte("styx pad id"), id[:]...))
	return [4]byte(s[:4])
}

// String returns "styxpad1" and the lowercase base32 of the id with a 4-byte checksum.
func (id ID) String() string {
	sum := id.checksum()
	return IDPrefix + strings.ToLower(b32.EncodeToString(append(id[:], sum[:]...)))
}

// IsZero reports whether id is the zero id.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err == nil {
		*id = v
	}
	return err
}

// ParseID parses the string form of a Pad id. A typo is a checksum error.
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, IDPrefix) {
		return ID{}, fmt.Errorf("pad: id %q does not start with %q: %w", short(s), IDPrefix, ErrInvalidID)
	}
	if len(s) != len(IDPrefix)+32 {
		return ID{}, fmt.Errorf("pad: id %q has %d characters, want %d: %w", short(s), len(s), len(IDPrefix)+32, ErrInvalidID)
	}
	raw, err := b32.DecodeString(strings.ToUpper(s[len(IDPrefix):]))
	if err != nil || len(raw) != 20 {
		return ID{}, fmt.Errorf("pad: id %q is not valid base32: %w", short(s), ErrInvalidID)
	}
	id := ID(raw[:16])
	sum := id.checksum()
	if subtle.ConstantTimeCompare(sum[:], raw[16:]) != 1 {
		return ID{}, fmt.Errorf("pad: id %q: checksum mismatch (check for a typo): %w", short(s), ErrInvalidID)
	}
	return id, nil
}

func short(s string) string {
	if len(s) > 48 {
		return s[:40] + "…"
	}
	return s
}
