package tee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
)

// ErrUnseal reports sealed bytes that do not open: tampered, truncated, another label or
// another sealing key.
var ErrUnseal = errors.New("sealed data does not open")

// sealVersion starts every blob a KeySealer produces.
const sealVersion byte = 1

// KeySealer seals with AES-256-GCM under a 32-byte key: the key of a key file (tee/sim) or a
// key the platform derives (SNP's MSG_KEY_REQ). Each label gets its own subkey (HKDF-SHA256), and
// the label is also the associated data. Format: version(1) || nonce(12) || ciphertext+tag.
type KeySealer struct {
	key [32]byte
}

// NewKeySealer returns a sealer for key. It copies key.
func NewKeySealer(key []byte) (*KeySealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("tee: sealing key is %d bytes, want 32", len(key))
	}
	s := &KeySealer{}
	copy(s.key[:], key)
	return s, nil
}

var _ Sealer = (*KeySealer)(nil)

// LogValue implements slog.LogValuer: the key never prints.
func (s *KeySealer) LogValue() slog.Value { return slog.StringValue("sealing key (redacted)") }

func (s *KeySealer) aead(label string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, s.key[:], nil, "styx seal v1 "+label, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Seal implements Sealer.
func (s *KeySealer) Seal(plaintext []byte, label string) ([]byte, error) {
	a, err := s.aead(label)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+a.NonceSize(), 1+a.NonceSize()+len(plaintext)+a.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return a.Seal(out, out[1:], plaintext, []byte(label)), nil
}

// Unseal implements Sealer.
func (s *KeySealer) Unseal(sealed []byte, label string) ([]byte, error) {
	a, err := s.aead(label)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+a.NonceSize()+a.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("tee: unseal %s: %w", label, ErrUnseal)
	}
	n := 1 + a.NonceSize()
	pt, err := a.Open(nil, sealed[1:n], sealed[n:], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("tee: unseal %s: %w", label, ErrUnseal)
	}
	return pt, nil
}

// NewEphemeralSealer returns a sealer under a random key that lives only in this process: what
// it seals can be unsealed only until the process exits. For TEEs without a sealing key (TDX),
// where the cluster key comes back through a peer or an escrow after a restart.
func NewEphemeralSealer() *KeySealer {
	s := &KeySealer{}
	rand.Read(s.key[:])
	return s
}
