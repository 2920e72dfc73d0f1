// Package party holds the keys of a Styx party (an owner, a consumer, a recipient, or the cluster
// itself) and the strings that name them.
//
// A party is one Ed25519 signing key and two HPKE key pairs: DHKEM(X25519) and the post-quantum
// hybrid ML-KEM-768+X25519 (X-Wing). Start with Generate or LoadKeyFile; share Key.Identity().String()
// (a long "styx1…" string that others seal to and verify with) or the short Identity.ID() (a
// "styxid1…" fingerprint used in policies and logs). Both strings carry a checksum, so a typo is a
// clear error rather than a wrong key.
package party

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
)

// HPKE KEM identifiers (RFC 9180 and draft-ietf-hpke-pq) that a party key supports.
const (
	KEMX25519 uint16 = 0x0020 // DHKEM(X25519, HKDF-SHA256)
	KEMXWing  uint16 = 0x647a // MLKEM768-X25519 (X-Wing)
)

// Sizes of the public keys inside an identity.
const (
	signingKeySize = ed25519.PublicKeySize // 32
	x25519KeySize  = 32
	xwingKeySize   = 1216 // ML-KEM-768 encapsulation key (1184) + X25519 (32)
	seedSize       = 32
)

var (
	// ErrMalformed reports an identity, id or key string that does not parse.
	ErrMalformed = errors.New("malformed")
	// ErrChecksum reports a well-formed string whose checksum does not match: usually a typo.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrUnsupportedKEM reports an HPKE KEM a party key does not hold.
	ErrUnsupportedKEM = errors.New("unsupported kem")
	// ErrKeyFilePermissions reports a private key file that others can read.
	ErrKeyFilePermissions = errors.New("key file permissions too open")
)

// A Key is a party's private key material. Its zero value is not usable; call Generate,
// ParseKey or LoadKeyFile. A Key never prints its secrets: it implements slog.LogValuer and
// fmt.Stringer with its public id only.
type Key struct {
	sign  ed25519.PrivateKey
	x     hpke.PrivateKey
	xwing hpke.PrivateKey
	seeds [3][seedSize]byte // ed25519 seed, x25519 scalar, x-wing seed: the serialised form
	id    *Identity
}

// Generate creates a new random party key.
func Generate() (*Key, error) {
	var seeds [3][seedSize]byte
	for i := range seeds {
		rand.Read(seeds[i][:])
	}
	return keyFromSeeds(seeds)
}

func keyFromSeeds(seeds [3][seedSize]byte) (*Key, error) {
	x, err := hpke.DHKEM(ecdh.X25519()).NewPrivateKey(seeds[1][:])
	if err != nil {
		return nil, fmt.Errorf("party: x25519 key: %w", err)
	}
	xw, err := hpke.MLKEM768X25519().NewPrivateKey(seeds[2][:])
	if err != nil {
		return nil, fmt.Errorf("party: x-wing key: %w", err)
	}
	k := &Key{sign: ed25519.NewKeyFromSeed(seeds[0][:]), x: x, xwing: xw, seeds: seeds}
	k.id = &Identity{
		sign:  k.sign.Public().(ed25519.PublicKey),
		x:     x.PublicKey(),
		xwing: xw.PublicKey(),
	}
	k.id.computeID()
	return k, nil
}

// Identity returns the public identity of k.
func (k *Key) Identity() *Identity { return k.id }

// Sign signs msg for the given domain (see Identity.Verify). The domain separates the
// purposes a key signs for, so a signature on a policy can never pass as one on a request.
func (k *Key) Sign(domain string, msg []byte) []byte {
	return ed25519.Sign(k.sign, signedMessage(domain, msg))
}

// SignRaw signs msg with the Ed25519 key directly, for formats that carry their own framing,
// such as the signed notes of the transparency log's tree heads. It refuses any message that
// starts like a domain-separated one, so a raw signature can never pass for one made by Sign.
func (k *Key) SignRaw(msg []byte) ([]byte, error) {
	if len(msg) >= len(sigPrefix) && string(msg[:len(sigPrefix)]) == sigPrefix {
		return nil, errors.New("party: raw message collides with the domain-separated signature prefix")
	}
	return ed25519.Sign(k.sign, msg), nil
}

// HPKEPrivateKey returns the HPKE private key for the KEM identified by kemID.
func (k *Key) HPKEPrivateKey(kemID uint16) (hpke.PrivateKey, error) {
	switch kemID {
	case KEMX25519:
		return k.x, nil
	case KEMXWing:
		return k.xwing, nil
	}
	return nil, fmt.Errorf("party: kem 0x%04x: %w", kemID, ErrUnsupportedKEM)
}

// String names the key by its public id; it never prints secrets.
func (k *Key) String() string { return "party key " + k.id.ID().String() }

// LogValue implements slog.LogValuer so a Key logged by mistake shows only its public id.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// signedMessage is the byte string an Ed25519 signature of a party covers.
func signedMessage(domain string, msg []byte) []byte {
	b := make([]byte, 0, len(sigPrefix)+len(domain)+1+len(msg))
	b = append(b, sigPrefix...)
	b = append(b, domain...)
	b = append(b, 0)
	return append(b, msg...)
}

const sigPrefix = "styx signature v1\x00"

// checksum is the 4-byte checksum of an encoded body under a label.
func checksum(label string, body []byte) [4]byte {
	h := sha256.New()
	h.Write([]byte(label))
	h.Write(body)
	var c [4]byte
	copy(c[:], h.Sum(nil))
	return c
}
