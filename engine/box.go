package engine

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/styx-tee/styx/store"
)

// errTamperedState reports a store record that does not authenticate: the storage outside the
// TEE changed or swapped it.
var errTamperedState = errors.New("engine: store record does not authenticate (tampered or swapped)")

// A box seals the engine's records before they reach the untrusted store. Each record is
// AES-256-GCM encrypted under a key derived from the state key, with the bucket and key as
// associated data, so a record moved to another key does not open.
type box struct{ aead cipher.AEAD }

func newBox(stateKey []byte) (*box, error) {
	if len(stateKey) != 32 {
		return nil, fmt.Errorf("engine: state key is %d bytes, want 32", len(stateKey))
	}
	k, err := hkdf.Key(sha256.New, stateKey, nil, "styx engine records v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &box{aead: aead}, nil
}

func ad(b store.Bucket, key string) []byte { return []byte(string(b) + "\x00" + key) }

func (x *box) seal(b store.Bucket, key string, plaintext []byte) []byte {
	nonce := make([]byte, x.aead.NonceSize(), x.aead.NonceSize()+len(plaintext)+x.aead.Overhead())
	rand.Read(nonce)
	return x.aead.Seal(nonce, nonce, plaintext, ad(b, key))
}

func (x *box) open(b store.Bucket, key string, sealed []byte) ([]byte, error) {
	n := x.aead.NonceSize()
	if len(sealed) < n+x.aead.Overhead() {
		return nil, fmt.Errorf("%w: %s/%s is too short", errTamperedState, b, key)
	}
	pt, err := x.aead.Open(nil, sealed[:n], sealed[n:], ad(b, key))
	if err != nil {
		return nil, fmt.Errorf("%w: %s/%s", errTamperedState, b, key)
	}
	return pt, nil
}
