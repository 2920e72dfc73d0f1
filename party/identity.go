package party

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// IdentityPrefix starts every identity string.
const IdentityPrefix = "styx1"

const identityVersion = 1

// identityBodySize is the size of an encoded identity without its checksum.
const identityBodySize = 1 + signingKeySize + x25519KeySize + xwingKeySize

// MaxIdentityStringLen caps the length of an identity string a parser will look at.
const MaxIdentityStringLen = 4096

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// decodeB32 decodes unpadded base32 in either case, and only its canonical form: the last
// character's unused bits must be zero, so that no two strings name the same bytes (base32
// decoding alone ignores those bits, and a typo there would go unnoticed).
func decodeB32(s string) ([]byte, error) {
	raw, err := b32.DecodeString(strings.ToUpper(s))
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(b32.EncodeToString(raw), s) {
		return nil, errors.New("non-zero bits after the last byte")
	}
	return raw, nil
}

// An Identity is the public half of a party key: what others seal to and verify with.
type Identity struct {
	sign  ed25519.PublicKey
	x     hpke.PublicKey
	xwing hpke.PublicKey
	id    ID
	str   string // the identity string, encoded once: every signed request carries it
}

// ParseIdentity parses an identity string ("styx1…"). Surrounding white space is ignored;
// anything else out of place is an error that says what is wrong.
func ParseIdentity(s string) (*Identity, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxIdentityStringLen {
		return nil, fmt.Errorf("party: identity is %d characters, longer than any identity: %w", len(s), ErrMalformed)
	}
	if !strings.HasPrefix(s, IdentityPrefix) {
		if strings.HasPrefix(s, IDPrefix) {
			return nil, fmt.Errorf("party: %q is a short party id, not an identity; use the full styx1… identity: %w", abbrev(s), ErrMalformed)
		}
		return nil, fmt.Errorf("party: identity %q does not start with %q: %w", abbrev(s), IdentityPrefix, ErrMalformed)
	}
	raw, err := decodeB32(s[len(IdentityPrefix):])
	if err != nil {
		return nil, fmt.Errorf("party: identity %q is not valid base32 (%v): %w", abbrev(s), err, ErrMalformed)
	}
	if len(raw) != identityBodySize+4 {
		return nil, fmt.Errorf("party: identity %q has %d bytes, want %d (truncated or extended?): %w", abbrev(s), len(raw), identityBodySize+4, ErrMalformed)
	}
	body, sum := raw[:identityBodySize], raw[identityBodySize:]
	want := checksum("styx identity", body)
	if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
		return nil, fmt.Errorf("party: identity %q: %w (check for a typo)", abbrev(s), ErrChecksum)
	}
	return IdentityFromBytes(body)
}

// IdentityFromBytes decodes the binary form of an identity (Identity.Bytes), as carried inside
// Pad headers. It checks the version and every key.
func IdentityFromBytes(b []byte) (*Identity, error) {
	if id := parsed.get(b); id != nil {
		return id, nil
	}
	id, err := identityFromBytes(b)
	if err == nil {
		parsed.put(b, id)
	}
	return id, err
}

// parsed remembers the identities decoded lately, by binary form. Decoding one checks its
// X-Wing key, which expands an ML-KEM key (≈ 0.1 ms), and a node sees the same few identities
// again with every request and every Pad it opens. An Identity is immutable, so one value may
// be shared; the bytes are the whole identity, so a hit is what decoding them gives.
var parsed = identityCache{m: map[string]*Identity{}}

// maxParsed bounds parsed: past it, the cache starts over.
const maxParsed = 1024

type identityCache struct {
	mu sync.Mutex
	m  map[string]*Identity
}

func (c *identityCache) get(b []byte) *Identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[string(b)]
}

func (c *identityCache) put(b []byte, id *Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxParsed {
		clear(c.m)
	}
	c.m[string(b)] = id
}

func identityFromBytes(b []byte) (*Identity, error) {
	if len(b) != identityBodySize {
		return nil, fmt.Errorf("party: identity is %d bytes, want %d: %w", len(b), identityBodySize, ErrMalformed)
	}
	if b[0] != identityVersion {
		return nil, fmt.Errorf("party: identity version %d is not supported (this build reads version %d): %w", b[0], identityVersion, ErrMalformed)
	}
	b = b[1:]
	sign := ed25519.PublicKey(bytes.Clone(b[:signingKeySize]))
	b = b[signingKeySize:]
	x, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(b[:x25519KeySize])
	if err != nil {
		return nil, fmt.Errorf("party: identity x25519 key: %v: %w", err, ErrMalformed)
	}
	xw, err := hpke.MLKEM768X25519().NewPublicKey(b[x25519KeySize:])
	if err != nil {
		return nil, fmt.Errorf("party: identity x-wing key: %v: %w", err, ErrMalformed)
	}
	id := &Identity{sign: sign, x: x, xwing: xw}
	id.computeID()
	return id, nil
}

// Bytes returns the canonical binary form of the identity (version, Ed25519, X25519, X-Wing).
func (id *Identity) Bytes() []byte {
	b := make([]byte, 0, identityBodySize)
	b = append(b, identityVersion)
	b = append(b, id.sign...)
	b = append(b, id.x.Bytes()...)
	return append(b, id.xwing.Bytes()...)
}

// String returns the identity string ("styx1…"), the form people copy and paste.
func (id *Identity) String() string { return id.str }

func (id *Identity) encode() string {
	body := id.Bytes()
	sum := checksum("styx identity", body)
	return IdentityPrefix + strings.ToLower(b32.EncodeToString(append(body, sum[:]...)))
}

// LogValue implements slog.LogValuer: logs show the short id, not two kilobytes of key.
func (id *Identity) LogValue() slog.Value { return slog.StringValue(id.id.String()) }

// ID returns the short fingerprint of the identity.
func (id *Identity) ID() ID { return id.id }

// Equal reports whether id and other are the same identity.
func (id *Identity) Equal(other *Identity) bool { return other != nil && id.id == other.id }

// SigningKey returns the Ed25519 public key of the identity.
// The key is a copy: identities are shared (see parsed), and a caller must not change another's.
func (id *Identity) SigningKey() ed25519.PublicKey { return bytes.Clone(id.sign) }

// HPKEPublicKey returns the HPKE public key for the KEM identified by kemID.
func (id *Identity) HPKEPublicKey(kemID uint16) (hpke.PublicKey, error) {
	switch kemID {
	case KEMX25519:
		return id.x, nil
	case KEMXWing:
		return id.xwing, nil
	}
	return nil, fmt.Errorf("party: kem 0x%04x: %w", kemID, ErrUnsupportedKEM)
}

// Verify reports whether sig is this identity's signature of msg for domain (see Key.Sign).
func (id *Identity) Verify(domain string, msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(id.sign, signedMessage(domain, msg), sig)
}

// computeID derives the fingerprint and the identity string of a freshly built identity.
func (id *Identity) computeID() {
	id.id = ID(sha256.Sum256(append([]byte("styx party id\x00"), id.Bytes()...)))
	id.str = id.encode()
}

// abbrev shortens a string for an error message.
func abbrev(s string) string {
	if len(s) <= 24 {
		return s
	}
	return s[:16] + "…" + s[len(s)-6:]
}
