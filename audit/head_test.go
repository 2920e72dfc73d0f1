package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func signedTestHead(t *testing.T) (*SignedHead, ed25519.PublicKey) {
	t.Helper()
	l := openTestLog(t, t.TempDir())
	appendN(t, l, 0, 5)
	h, err := l.SignHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h, l.PublicKey()
}

func TestHeadFormat(t *testing.T) {
	h, pub := signedTestHead(t)
	text := string(h.Note)
	lines := strings.Split(text, "\n")
	if lines[0] != "test.styx/audit" || lines[1] != "5" || lines[2] != h.Root.String() || !strings.HasPrefix(lines[3], "time 2026-11-24T12:00:00.") || lines[4] != "" || !strings.HasPrefix(lines[5], "— test.styx/audit ") {
		t.Fatalf("unexpected head layout:\n%s", text)
	}
	// The head is a standard signed note: x/mod's own verifier accepts it with our verifier key.
	vkey, err := VerifierKey("test.styx/audit", pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(h.Note, note.VerifierList(v)); err != nil {
		t.Fatalf("note.Open: %v", err)
	}
	if h.KeyID != vkey[len("test.styx/audit+"):len("test.styx/audit+")+8] {
		t.Fatalf("key id %s does not match verifier key %s", h.KeyID, vkey)
	}
}

func TestHeadFromOtherKeyRefused(t *testing.T) {
	h, _ := signedTestHead(t)
	other := testKey("other").Public().(ed25519.PublicKey)
	if _, err := VerifyHead(h.Note, other); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("head checked with another key: %v, want ErrBadSignature", err)
	}
	// A head signed by another key under the same origin is refused too.
	forged, err := signHead(h.Head, Ed25519Signer(testKey("other")), other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyHead(forged.Note, testKey("cluster").Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("head signed by another key: %v, want ErrBadSignature", err)
	}
	if _, err := VerifyHead(h.Note, ed25519.PublicKey{1, 2}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("short key: %v", err)
	}
}

func TestHeadTamperRefused(t *testing.T) {
	h, pub := signedTestHead(t)
	text := string(h.Note)
	sigAt := strings.Index(text, "\n\n— ")
	edits := map[string]string{
		"size":      strings.Replace(text, "\n5\n", "\n6\n", 1),
		"root":      strings.Replace(text, h.Root.String(), tlog.Hash{1}.String(), 1),
		"time":      strings.Replace(text, "time 2026", "time 2027", 1),
		"origin":    strings.Replace(text, "test.styx/audit\n", "test.styx/audiT\n", 1),
		"signature": text[:len(text)-6] + "AAAA=\n",
		"extra ext": text[:sigAt+1] + "extra\n" + text[sigAt+1:],
	}
	for name, s := range edits {
		_, err := VerifyHead([]byte(s), pub)
		if err == nil {
			t.Errorf("%s: tampered head accepted", name)
		}
		if !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrBadSignature or ErrMalformed", name, err)
		}
	}
}

func TestParseHeadTextStrict(t *testing.T) {
	good := "o\n5\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T13:14:36.12Z\n"
	if _, err := parseHeadText(good); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"o\n05\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T13:14:36.12Z\n",
		"o\n-1\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T13:14:36.12Z\n",
		"o\n5\nAAAA\ntime 2026-11-24T13:14:36.12Z\n",
		"o\n5\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T13:14:36.120Z\n",
		"o\n5\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T14:14:36.12+01:00\n",
		"o\n5\n" + tlog.Hash{}.String() + "\nwhen 2026-11-24T13:14:36.12Z\n",
		"o\n5\n" + tlog.Hash{}.String() + "\n",
		"o p\n5\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T13:14:36.12Z\n",
		"o+p\n5\n" + tlog.Hash{}.String() + "\ntime 2026-11-24T13:14:36.12Z\n",
	} {
		if _, err := parseHeadText(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want ErrMalformed", bad, err)
		}
	}
}

func TestCryptoSignerAdapter(t *testing.T) {
	key := testKey("cluster")
	opts := testOptions(key)
	opts.Signer = CryptoSigner(key) // ed25519.PrivateKey is a crypto.Signer
	l, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 0, 2)
	h, err := l.SignHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyHead(h.Note, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
}

func TestAdvanceHeadRefusesRollbackAndFork(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "last-head")
	l := openTestLog(t, t.TempDir())
	pub := l.PublicKey()
	appendN(t, l, 0, 4)
	h4, _ := l.SignHead(ctx)
	if got, err := AdvanceHead(path, pub, h4.Note, nil); err != nil || got.Size != 4 {
		t.Fatalf("first head: %v %v", got, err)
	}
	appendN(t, l, 4, 5)
	h9, _ := l.SignHead(ctx)
	p, _ := l.ProveConsistency(4, 9)
	if got, err := AdvanceHead(path, pub, h9.Note, p); err != nil || got.Size != 9 {
		t.Fatalf("advance: %v %v", got, err)
	}
	// Rollback: the operator serves the older head again.
	if _, err := AdvanceHead(path, pub, h4.Note, nil); !errors.Is(err, ErrRollback) {
		t.Fatalf("rollback: %v, want ErrRollback", err)
	}
	// Fork: a different log under the same key, larger, with its own (valid) proof.
	f := openTestLog(t, t.TempDir())
	appendN(t, f, 100, 12)
	h12, _ := f.SignHead(ctx)
	pf, _ := f.ProveConsistency(9, 12)
	if _, err := AdvanceHead(path, pub, h12.Note, pf); !errors.Is(err, ErrFork) {
		t.Fatalf("fork: %v, want ErrFork", err)
	}
	// A head from another key is refused before anything else.
	o, err := Open(t.TempDir(), testOptions(testKey("other")))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	appendN(t, o, 0, 20)
	ho, _ := o.SignHead(ctx)
	if _, err := AdvanceHead(path, pub, ho.Note, nil); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other key: %v, want ErrBadSignature", err)
	}
	last, err := LoadLastHead(path, pub)
	if err != nil || string(last.Note) != string(h9.Note) {
		t.Fatalf("last head changed by refused advances: %v %v", last, err)
	}
	// Same size and root: accepted, the saved head is kept.
	if got, err := AdvanceHead(path, pub, h9.Note, nil); err != nil || got.Size != 9 {
		t.Fatalf("same head again: %v %v", got, err)
	}
}

func TestLoadLastHeadMissingAndForeign(t *testing.T) {
	dir := t.TempDir()
	h, err := LoadLastHead(filepath.Join(dir, "none"), testKey("cluster").Public().(ed25519.PublicKey))
	if h != nil || err != nil {
		t.Fatalf("missing file: %v %v", h, err)
	}
	sh, pub := signedTestHead(t)
	path := filepath.Join(dir, "last")
	if err := SaveLastHead(path, sh); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLastHead(path, pub); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLastHead(path, testKey("other").Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("saved head under another key: %v", err)
	}
}
