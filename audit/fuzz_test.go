package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
)

// FuzzParseRecord: no input panics, and whatever parses re-encodes to exactly the input.
func FuzzParseRecord(f *testing.F) {
	for i := range 10 {
		ev := testEvent(i)
		ev.Time = goldenTime
		b, _ := MarshalRecord(&ev)
		f.Add(b)
	}
	c := testClaims()
	b, _ := MarshalRecord(&Event{Kind: KindJobDone, Time: goldenTime, Job: c.Job, Pads: c.pads(), Receipt: &c})
	f.Add(b)
	f.Add([]byte(`{"v":1,"kind":"use","time":"2026-11-24T13:14:36.12Z","pads":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseRecord(b)
		if err != nil {
			return
		}
		again, err := MarshalRecord(ev)
		if err != nil {
			t.Fatalf("parsed record does not marshal: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Marshal(Parse(x)) != x\n%q\n%q", b, again)
		}
	})
}

// FuzzParseReceipt: no input panics; what parses re-encodes to the input; Verify never panics
// and whatever verifies carries exactly the claims of its logged record.
func FuzzParseReceipt(f *testing.F) {
	key := testKey("cluster")
	l, err := Open(f.TempDir(), testOptions(key))
	if err != nil {
		f.Fatal(err)
	}
	defer l.Close()
	for i := range 5 {
		if _, err := l.Append(context.Background(), testEvent(i)); err != nil {
			f.Fatal(err)
		}
	}
	r, err := l.IssueReceipt(context.Background(), testClaims(), "styxid1c", nil)
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := r.Marshal()
	f.Add(seed)
	f.Add([]byte(`{"v":1}`))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("Marshal(Parse(x)) != x: %v", err)
		}
		head, ev, err := r.Verify(pub)
		if err != nil {
			return
		}
		if r.Index >= head.Size || !bytes.Equal(ev.Receipt.canonical(), r.Claims.canonical()) {
			t.Fatalf("a receipt verified whose claims or index do not match its log entry:\n%s", b)
		}
	})
}

// FuzzVerifyHead: no input panics; what verifies re-formats to its own text.
func FuzzVerifyHead(f *testing.F) {
	key := testKey("cluster")
	h, err := signHead(Head{Origin: "o", Size: 3, Time: goldenTime}, Ed25519Signer(key), key.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h.Note)
	f.Add([]byte("o\n3\nAAAA\n\n— o AAAA\n"))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := VerifyHead(b, pub)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(b, headText(sh.Head)) {
			t.Fatalf("verified head does not start with its own text: %q", b)
		}
	})
}
