package audit

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func testAEAD(t testing.TB, name string) cipher.AEAD {
	t.Helper()
	key := sha256.Sum256([]byte("audit seal key " + name))
	a, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func sealedOptions(t testing.TB, key string) Options {
	opts := testOptions(testKey("cluster"))
	opts.Seal = testAEAD(t, key)
	return opts
}

func TestSealedLog(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, sealedOptions(t, "k"))
	if err != nil {
		t.Fatal(err)
	}
	es := appendN(t, l, 0, 12)
	head := verifyAll(t, l, nil)
	l.Close()

	raw, _ := os.ReadFile(filepath.Join(dir, recordsFile))
	for _, secret := range []string{"pad-1", "styxid1party", "job-3", `"kind"`} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("sealed records file shows %q in clear", secret)
		}
	}
	l, err = Open(dir, sealedOptions(t, "k"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range es {
		got, err := l.Read(e.Index)
		if err != nil || !bytes.Equal(got.Record, e.Record) {
			t.Fatalf("record %d after reopen: %v", e.Index, err)
		}
	}
	appendN(t, l, 12, 3)
	verifyAll(t, l, head)
}

func TestSealedLogRefusesWrongKeyAndNoKey(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, sealedOptions(t, "k"))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 3)
	l.Close()
	if _, err := Open(dir, sealedOptions(t, "other")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong sealing key: %v, want ErrCorrupt", err)
	}
	if _, err := Open(dir, testOptions(testKey("cluster"))); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("sealed log opened without a key: %v, want ErrCorrupt", err)
	}
	plain := t.TempDir()
	l = openTestLog(t, plain)
	appendN(t, l, 0, 1)
	l.Close()
	if _, err := Open(plain, sealedOptions(t, "k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("plaintext log opened with a sealing key: %v, want ErrCorrupt", err)
	}
}

func TestSealedFramesCannotMove(t *testing.T) {
	// Two sealed frames of the same length swapped, with valid CRCs: the index in the
	// associated data gives them away.
	dir := t.TempDir()
	l, err := Open(dir, sealedOptions(t, "k"))
	if err != nil {
		t.Fatal(err)
	}
	ev := testEvent(1)
	ev.Time = goldenTime
	appendBatch := []Event{ev, ev}
	if _, err := l.AppendBatch(context.Background(), appendBatch); err != nil {
		t.Fatal(err)
	}
	l.Close()
	raw, _ := os.ReadFile(filepath.Join(dir, recordsFile))
	body := raw[len(sealedMagic):]
	half := len(body) / 2
	swapped := append(append(append([]byte(nil), raw[:len(sealedMagic)]...), body[half:]...), body[:half]...)
	os.WriteFile(filepath.Join(dir, recordsFile), swapped, 0o600)
	if _, err := Open(dir, sealedOptions(t, "k")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped sealed frames: %v, want ErrCorrupt", err)
	}
}

func TestSealedTornTail(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, sealedOptions(t, "k"))
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 5)
	head := verifyAll(t, l, nil)
	end, hashEnd := fileSize(t, dir, recordsFile), fileSize(t, dir, hashesFile)
	appendN(t, l, 5, 1)
	l.Close()
	truncateFile(t, dir, recordsFile, end+20)
	truncateFile(t, dir, hashesFile, hashEnd)
	l, err = Open(dir, sealedOptions(t, "k"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Size() != 5 {
		t.Fatalf("size %d, want 5", l.Size())
	}
	verifyAll(t, l, head)
}

func TestSealRequiresLongNonces(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 32))
	gcm, _ := cipher.NewGCM(block)
	opts := testOptions(testKey("cluster"))
	opts.Seal = gcm
	if l, err := Open(t.TempDir(), opts); err == nil {
		l.Close()
		t.Fatal("AES-GCM with 12-byte random nonces accepted")
	}
}
