package store

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// KeySize is the size of a store encryption key.
const KeySize = 32

// Key keys the store's encryption at rest. It never appears in logs: its
// String and LogValue methods redact it.
type Key struct {
	b [KeySize]byte
}

// NewKey wraps a 32-byte key. The caller keeps ownership of b and may wipe
// it afterwards.
func NewKey(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("%w: store key is %d bytes, want %d", ErrInvalid, len(b), KeySize)
	}
	k := &Key{}
	copy(k.b[:], b)
	return k, nil
}

// GenerateKey returns a random key, for tests and development nodes.
func GenerateKey() *Key {
	k := &Key{}
	rand.Read(k.b[:])
	return k
}

// String redacts the key.
func (k *Key) String() string { return "store.Key(REDACTED)" }

// GoString redacts the key for %#v.
func (k *Key) GoString() string { return k.String() }

// LogValue redacts the key in slog output.
func (k *Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// derive expands a purpose-specific subkey so that the same input key is
// never used for two things.
func (k *Key) derive(label string) []byte {
	out, err := hkdf.Key(sha256.New, k.b[:], nil, label, 32)
	if err != nil {
		panic("store: hkdf: " + err.Error()) // unreachable for 32 bytes of sha256
	}
	return out
}

// natsKey is the string NATS keys its per-stream encryption from.
func (k *Key) natsKey() string {
	return hex.EncodeToString(k.derive("styx store v1 jetstream at-rest key"))
}

// checkValue proves knowledge of the key without revealing it.
func (k *Key) checkValue() []byte {
	return k.derive("styx store v1 key check")
}

const keyCheckFile = "key-check"

// checkKey makes sure key is the one the store in dir was created with. A
// new store records its check value; an existing one must match it, so a
// wrong key fails fast with ErrWrongKey instead of JetStream quietly
// skipping streams it cannot decrypt and the store recreating them empty.
func checkKey(dir string, key *Key) error {
	path := filepath.Join(dir, keyCheckFile)
	got, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKeyCheck(dir, key)
	}
	if err != nil {
		return fmt.Errorf("store: read key check: %w", err)
	}
	if !hmac.Equal(got, key.checkValue()) {
		return fmt.Errorf("%w: the key does not match the one %s was created with", ErrWrongKey, dir)
	}
	return nil
}

func createKeyCheck(dir string, key *Key) error {
	if _, err := os.Stat(filepath.Join(dir, "nats")); err == nil {
		return fmt.Errorf("%w: %s holds data but no key check file; refusing to guess", ErrWrongKey, dir)
	}
	if err := writeFileAtomic(dir, keyCheckFile, key.checkValue()); err != nil {
		return fmt.Errorf("store: write key check: %w", err)
	}
	return nil
}

// writeFileAtomic writes name in dir so that after a crash it holds either
// nothing or all of data.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
