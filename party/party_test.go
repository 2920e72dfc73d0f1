package party

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustKey(t testing.TB) *Key {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIdentityRoundTrip(t *testing.T) {
	k := mustKey(t)
	s := k.Identity().String()
	if !strings.HasPrefix(s, IdentityPrefix) {
		t.Fatalf("identity %q lacks prefix", s)
	}
	got, err := ParseIdentity("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(k.Identity()) || got.ID() != k.Identity().ID() {
		t.Fatal("parsed identity differs")
	}
	if !bytes.Equal(got.Bytes(), k.Identity().Bytes()) {
		t.Fatal("binary form differs")
	}
	if got.String() != s {
		t.Fatal("string form not canonical")
	}
}

func TestIdentityTypoIsAnError(t *testing.T) {
	s := mustKey(t).Identity().String()
	alphabet := "abcdefghijklmnopqrstuvwxyz234567"
	// Change every 37th character to each other letter of the alphabet: never a valid identity.
	for i := len(IdentityPrefix); i < len(s); i += 37 {
		for _, c := range alphabet {
			if byte(c) == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			if _, err := ParseIdentity(typo); err == nil {
				t.Fatalf("typo at %d (%c) accepted", i, c)
			}
		}
	}
	// A checksum error names the category.
	typo := s[:len(s)-10] + flip(s[len(s)-10]) + s[len(s)-9:]
	if _, err := ParseIdentity(typo); !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrMalformed) {
		t.Fatalf("typo: %v", err)
	}
}

// flip returns a lower-case base32 character other than c, so a "typo" always changes the string.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func TestParseIdentityErrors(t *testing.T) {
	k := mustKey(t)
	s := k.Identity().String()
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "does not start with"},
		{"wrong prefix", "age1" + s[5:], "does not start with"},
		{"truncated", s[:len(s)-8], "truncated"},
		{"short id", k.Identity().ID().String(), "short party id"},
		{"not base32", s[:100] + "!" + s[101:], "base32"},
		{"huge", s + strings.Repeat("a", MaxIdentityStringLen), "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseIdentity(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestIDRoundTripAndTypos(t *testing.T) {
	k := mustKey(t)
	id := k.Identity().ID()
	s := id.String()
	got, err := ParseID(s)
	if err != nil || got != id {
		t.Fatalf("ParseID: %v", err)
	}
	// A full identity parses to its id.
	got, err = ParseID(k.Identity().String())
	if err != nil || got != id {
		t.Fatalf("ParseID(identity): %v", err)
	}
	for i := len(IDPrefix); i < len(s); i++ {
		typo := s[:i] + flip(s[i]) + s[i+1:]
		if _, err := ParseID(typo); err == nil {
			t.Fatalf("typo at %d accepted", i)
		}
	}
	var u ID
	if err := u.UnmarshalText([]byte(s)); err != nil || u != id {
		t.Fatalf("UnmarshalText: %v", err)
	}
	if (ID{}).IsZero() != true || id.IsZero() {
		t.Fatal("IsZero")
	}
}

func TestSignVerifyDomains(t *testing.T) {
	k := mustKey(t)
	msg := []byte("policy bytes")
	sig := k.Sign("policy", msg)
	id := k.Identity()
	if !id.Verify("policy", msg, sig) {
		t.Fatal("valid signature refused")
	}
	if id.Verify("request", msg, sig) {
		t.Fatal("signature accepted in another domain")
	}
	if id.Verify("policy", []byte("policy bytez"), sig) {
		t.Fatal("signature accepted on another message")
	}
	if mustKey(t).Identity().Verify("policy", msg, sig) {
		t.Fatal("signature accepted under another key")
	}
	if id.Verify("policy", msg, sig[:10]) {
		t.Fatal("short signature accepted")
	}
}

func TestSignRawCannotForgeDomainSignatures(t *testing.T) {
	k := mustKey(t)
	if _, err := k.SignRaw(signedMessage("policy", []byte("x"))); err == nil {
		t.Fatal("raw signature over a domain-separated message allowed")
	}
	sig, err := k.SignRaw([]byte("a note\n"))
	if err != nil || len(sig) != 64 {
		t.Fatalf("SignRaw: %v", err)
	}
}

func TestHPKERoundTrip(t *testing.T) {
	k := mustKey(t)
	for _, kem := range []uint16{KEMX25519, KEMXWing} {
		pub, err := k.Identity().HPKEPublicKey(kem)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), []byte("data key"))
		if err != nil {
			t.Fatal(err)
		}
		priv, err := k.HPKEPrivateKey(kem)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), ct)
		if err != nil || string(pt) != "data key" {
			t.Fatalf("kem %x: open: %v", kem, err)
		}
		// Through a parsed identity too.
		parsed, _ := ParseIdentity(k.Identity().String())
		pub2, _ := parsed.HPKEPublicKey(kem)
		if !bytes.Equal(pub2.Bytes(), pub.Bytes()) {
			t.Fatal("parsed identity has another hpke key")
		}
	}
	if _, err := k.HPKEPrivateKey(0x0010); !errors.Is(err, ErrUnsupportedKEM) {
		t.Fatalf("P-256: %v", err)
	}
	if _, err := k.Identity().HPKEPublicKey(0x0010); !errors.Is(err, ErrUnsupportedKEM) {
		t.Fatalf("P-256: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alice.key")
	k := mustKey(t)
	if err := WriteKeyFile(path, k, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
	got, err := LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Identity().Equal(k.Identity()) {
		t.Fatal("loaded key differs")
	}
	// Never overwrite a key.
	if err := WriteKeyFile(path, mustKey(t), time.Now()); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: %v", err)
	}
	if again, _ := LoadKeyFile(path); !again.Identity().Equal(k.Identity()) {
		t.Fatal("key was replaced")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	// Readable by others: refused like ssh does.
	os.Chmod(path, 0o644)
	_, err = LoadKeyFile(path)
	var pe *PermissionError
	if !errors.As(err, &pe) || !errors.Is(err, ErrKeyFilePermissions) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("permissive file: %v", err)
	}
}

func TestParseKeyErrors(t *testing.T) {
	k := mustKey(t)
	good := k.Marshal(time.Now())
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	keyLine := lines[len(lines)-1]
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "no STYX-PARTY-KEY"},
		{"comments only", "# x\n", "no STYX-PARTY-KEY"},
		{"identity", k.Identity().String(), "public identity"},
		{"two keys", keyLine + "\n" + keyLine, "more than one"},
		{"damaged", keyLine[:len(keyLine)-3], "damaged"},
		{"typo", keyLine[:30] + strings.ToUpper(flip(keyLine[30]|0x20)) + keyLine[31:], "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKey([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestKeyNeverLogsSecrets(t *testing.T) {
	k := mustKey(t)
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", "key", k, "identity", k.Identity())
	out := buf.String()
	secret := strings.TrimSpace(string(k.Marshal(time.Now())))
	secret = secret[strings.LastIndex(secret, "\n")+1:]
	if strings.Contains(out, secret[len(keyLinePrefix):len(keyLinePrefix)+20]) {
		t.Fatal("secret reached the log")
	}
	if !strings.Contains(out, k.Identity().ID().String()) {
		t.Fatalf("log lacks the public id: %s", out)
	}
}

func FuzzParseIdentity(f *testing.F) {
	k, _ := Generate()
	f.Add(k.Identity().String())
	f.Add(k.Identity().ID().String())
	f.Add("styx1")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err == nil {
			if again, err := ParseIdentity(id.String()); err != nil || !again.Equal(id) {
				t.Fatalf("round trip: %v", err)
			}
		}
		if pid, err := ParseID(s); err == nil {
			if again, err := ParseID(pid.String()); err != nil || again != pid {
				t.Fatalf("id round trip: %v", err)
			}
		}
	})
}

func FuzzParseKey(f *testing.F) {
	k, _ := Generate()
	f.Add(k.Marshal(time.Now()))
	f.Add([]byte("STYX-PARTY-KEY-1-AAAA"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKey(b)
		if err == nil {
			if again, err := ParseKey(k.Marshal(time.Now())); err != nil || !again.Identity().Equal(k.Identity()) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// TestIdentitiesShared: decoding the same bytes again gives the identity decoded before (the
// cache), bounded in size; nothing a caller gets from a shared identity changes it for others;
// and malformed bytes are refused every time, never remembered.
func TestIdentitiesShared(t *testing.T) {
	k := mustKey(t)
	b := k.Identity().Bytes()
	first, err := IdentityFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseIdentity(k.Identity().String())
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Error("the same identity was decoded twice")
	}
	pub := again.SigningKey()
	pub[0] ^= 1
	if !first.Verify("test", []byte("m"), k.Sign("test", []byte("m"))) {
		t.Error("changing a signing key a caller got changed the shared identity")
	}
	bad := bytes.Clone(b)
	bad[0] = 2
	for range 2 {
		if _, err := IdentityFromBytes(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("identity of an unknown version: %v", err)
		}
	}
	for i := range maxParsed + 1 {
		parsed.put(fmt.Appendf(nil, "key %d", i), first)
	}
	parsed.mu.Lock()
	n := len(parsed.m)
	parsed.mu.Unlock()
	if n > maxParsed {
		t.Errorf("%d identities remembered, at most %d wanted", n, maxParsed)
	}
}
