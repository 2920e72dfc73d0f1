package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// issueTestReceipt logs some traffic around a receipt so its proof is not trivial.
func issueTestReceipt(t *testing.T) (*Log, *Receipt) {
	t.Helper()
	l := openTestLog(t, t.TempDir())
	appendN(t, l, 0, 11)
	r, err := l.IssueReceipt(context.Background(), testClaims(), "styxid1consumer", map[string]string{"purpose": "research"})
	if err != nil {
		t.Fatal(err)
	}
	return l, r
}

func clusterPub() ed25519.PublicKey { return testKey("cluster").Public().(ed25519.PublicKey) }

func TestReceiptVerifiesOffline(t *testing.T) {
	_, r := issueTestReceipt(t)
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Offline: nothing but the bytes and the public key.
	parsed, err := ParseReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	head, ev, err := parsed.Verify(clusterPub())
	if err != nil {
		t.Fatal(err)
	}
	if head.Size != 12 || parsed.Index != 11 || ev.Kind != KindJobDone || ev.Actor != "styxid1consumer" || ev.Details["purpose"] != "research" {
		t.Fatalf("verified head %d, index %d, event %+v", head.Size, parsed.Index, ev)
	}
	if !ev.Receipt.TEE.Simulated {
		t.Fatal("simulated TEE not visible in the verified event")
	}
	if !bytes.Contains(b, []byte(`"tee":{"type":"sim","measurement":"00ff","simulated":true}`)) {
		t.Fatalf("simulated flag not visible in the receipt: %s", b)
	}
	again, _ := parsed.Marshal()
	if !bytes.Equal(again, b) {
		t.Fatal("Marshal(Parse(x)) != x")
	}
}

func TestReceiptAfterEventsInOneWrite(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	appendN(t, l, 0, 3)
	use := Event{Kind: KindUse, Actor: "styxid1consumer", Job: "job-1", Pads: []string{"pad-a"}}
	index, err := l.LogReceipt(context.Background(), testClaims(), "styxid1consumer", nil, use)
	if err != nil {
		t.Fatal(err)
	}
	if index != 4 || l.Size() != 5 {
		t.Fatalf("receipt at %d of a log of %d, want 4 of 5", index, l.Size())
	}
	if h := l.LatestHead(); h != nil {
		t.Fatalf("logging a receipt signed a head (of size %d)", h.Size)
	}
	r, err := l.Receipt(context.Background(), index)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Verify(clusterPub()); err != nil || r.Index != index {
		t.Fatalf("receipt %d: %v", r.Index, err)
	}
	got, err := l.Read(3)
	if err != nil || got.Event.Kind != KindUse || got.Event.Job != "job-1" {
		t.Fatalf("entry before the receipt: %+v (%v)", got.Event, err)
	}
	// An invalid event fails the whole batch: neither it nor the receipt is logged.
	if _, err := l.LogReceipt(context.Background(), testClaims(), "styxid1consumer", nil, Event{Kind: "Not A Kind"}); err == nil {
		t.Fatal("an invalid event before a receipt was accepted")
	}
	if l.Size() != 5 {
		t.Fatalf("log grew to %d after a refused batch", l.Size())
	}
}

func TestReleaseReceipt(t *testing.T) {
	l := openTestLog(t, t.TempDir())
	c := Claims{
		Kind:      ReceiptRelease,
		Job:       "release-1",
		Inputs:    []PadRef{{Pad: "pad1model", Policy: "sha256:derived"}},
		Recipient: "styxid1clinic",
		TEE:       TEEClaims{Type: "tdx", Measurement: "abcd"},
	}
	r, err := l.IssueReceipt(context.Background(), c, "styxid1clinic", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, ev, err := r.Verify(clusterPub())
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindRelease || ev.Receipt.Recipient != "styxid1clinic" || ev.Receipt.TEE.Simulated {
		t.Fatalf("release event %+v", ev)
	}
	c.Recipient = ""
	if _, err := l.IssueReceipt(context.Background(), c, "", nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("release without recipient: %v", err)
	}
}

func TestReceiptReissuedUnderLaterHead(t *testing.T) {
	l, r := issueTestReceipt(t)
	appendN(t, l, 100, 9)
	r2, err := l.Receipt(context.Background(), r.Index)
	if err != nil {
		t.Fatal(err)
	}
	h2, _, err := r2.Verify(clusterPub())
	if err != nil {
		t.Fatal(err)
	}
	if h2.Size != 21 {
		t.Fatalf("reissued under a head of %d, want 21", h2.Size)
	}
	if _, err := l.Receipt(context.Background(), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("receipt for a plain event: %v", err)
	}
}

// TestReceiptEveryFieldTamperRefused changes one field at a time and expects a refusal.
func TestReceiptEveryFieldTamperRefused(t *testing.T) {
	l, r := issueTestReceipt(t)
	other, _ := l.Read(3)
	otherProof, _ := l.ProveInclusion(3, 12)
	forgedHead, err := signHead(Head{Origin: "test.styx/audit", Size: 12, Root: tlog.Hash{7}, Time: goldenTime}, Ed25519Signer(testKey("other")), testKey("other").Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	// A genuine head of another size from the same log.
	appendN(t, l, 12, 1)
	laterHead, _ := l.SignHead(context.Background())

	tampers := map[string]func(*Receipt){
		"claims.kind":        func(r *Receipt) { r.Claims.Kind = ReceiptRelease; r.Claims.Recipient = "styxid1x" },
		"claims.job":         func(r *Receipt) { r.Claims.Job = "job-other" },
		"claims.program":     func(r *Receipt) { r.Claims.Program = "sha256:0000" },
		"claims.program.del": func(r *Receipt) { r.Claims.Program = "" },
		"claims.input.pad":   func(r *Receipt) { r.Claims.Inputs[0].Pad = "pad1other" },
		"claims.input.pol":   func(r *Receipt) { r.Claims.Inputs[1].Policy = "sha256:cccc" },
		"claims.input.drop":  func(r *Receipt) { r.Claims.Inputs = r.Claims.Inputs[:1] },
		"claims.input.add":   func(r *Receipt) { r.Claims.Inputs = append(r.Claims.Inputs, PadRef{"pad1x", "sha256:x"}) },
		"claims.input.order": func(r *Receipt) { slices.Reverse(r.Claims.Inputs) },
		"claims.output.pad":  func(r *Receipt) { r.Claims.Outputs[0].Pad = "pad1other" },
		"claims.output.pol":  func(r *Receipt) { r.Claims.Outputs[0].Policy = "sha256:weaker" },
		"claims.recipient":   func(r *Receipt) { r.Claims.Recipient = "styxid1eve" },
		"claims.tee.type":    func(r *Receipt) { r.Claims.TEE.Type = "tdx" },
		"claims.tee.meas":    func(r *Receipt) { r.Claims.TEE.Measurement = "11ff" },
		"claims.tee.sim":     func(r *Receipt) { r.Claims.TEE.Type = "snp"; r.Claims.TEE.Simulated = false },
		"index+1":            func(r *Receipt) { r.Index++ },
		"index-1":            func(r *Receipt) { r.Index-- },
		"index beyond":       func(r *Receipt) { r.Index = 1 << 40 },
		"record byte":        func(r *Receipt) { r.Record[len(r.Record)/2] ^= 1 },
		"record other":       func(r *Receipt) { r.Record = other.Record },
		"record+proof other": func(r *Receipt) { r.Record, r.Index, r.Proof = other.Record, 3, otherProof },
		"proof hash":         func(r *Receipt) { r.Proof[1][5] ^= 4 },
		"proof dropped":      func(r *Receipt) { r.Proof = r.Proof[:len(r.Proof)-1] },
		"proof extended":     func(r *Receipt) { r.Proof = append(r.Proof, r.Proof[0]) },
		"proof empty":        func(r *Receipt) { r.Proof = nil },
		"head size":          func(r *Receipt) { r.Head = bytes.Replace(r.Head, []byte("\n12\n"), []byte("\n13\n"), 1) },
		"head later":         func(r *Receipt) { r.Head = laterHead.Note },
		"head other key":     func(r *Receipt) { r.Head = forgedHead.Note },
		"head signature":     func(r *Receipt) { r.Head = append(r.Head[:len(r.Head)-8:len(r.Head)-8], "AAAAAAA\n"...) },
		"head empty":         func(r *Receipt) { r.Head = nil },
	}
	for name, tamper := range tampers {
		t.Run(name, func(t *testing.T) {
			c := cloneReceipt(r)
			tamper(c)
			_, _, err := c.Verify(clusterPub())
			if err == nil {
				t.Fatal("tampered receipt verified")
			}
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrTampered, ErrBadSignature or ErrMalformed", err)
			}
			// Through the encoding as well: a tampered receipt that still parses must not verify.
			if b, err := c.Marshal(); err == nil {
				if p, err := ParseReceipt(b); err == nil {
					if _, _, err := p.Verify(clusterPub()); err == nil {
						t.Fatal("tampered receipt verified after a round trip")
					}
				}
			}
		})
	}
	// The untouched original still verifies (the tampers worked on copies).
	if _, _, err := r.Verify(clusterPub()); err != nil {
		t.Fatal(err)
	}
}

func TestReceiptTamperErrorsNameTheField(t *testing.T) {
	_, r := issueTestReceipt(t)
	c := cloneReceipt(r)
	c.Claims.Outputs[0].Policy = "sha256:weaker"
	_, _, err := c.Verify(clusterPub())
	var te *TamperError
	if !errors.As(err, &te) || te.Field != "claims" || !strings.Contains(err.Error(), "outputs") {
		t.Fatalf("error %v does not name the outputs", err)
	}
	c = cloneReceipt(r)
	c.Claims.Job = "job-x"
	_, _, err = c.Verify(clusterPub())
	if !errors.As(err, &te) || te.Field != "claims.job" {
		t.Fatalf("error %v does not name the job", err)
	}
}

func TestReceiptOtherClusterKeyRefused(t *testing.T) {
	_, r := issueTestReceipt(t)
	if _, _, err := r.Verify(testKey("other").Public().(ed25519.PublicKey)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("verified with another cluster key: %v, want ErrBadSignature", err)
	}
}

func TestReceiptRecordWithoutClaimsRefused(t *testing.T) {
	// A genuine, included record that is not a receipt event cannot back a receipt.
	l, r := issueTestReceipt(t)
	e, _ := l.Read(2)
	p, _ := l.ProveInclusion(2, 12)
	c := cloneReceipt(r)
	c.Index, c.Record, c.Proof = 2, e.Record, p
	if _, _, err := c.Verify(clusterPub()); !errors.Is(err, ErrTampered) {
		t.Fatalf("plain record behind a receipt: %v, want ErrTampered", err)
	}
}

func TestParseReceiptStrict(t *testing.T) {
	_, r := issueTestReceipt(t)
	good, _ := r.Marshal()
	var m map[string]any
	if err := json.Unmarshal(good, &m); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"indented":      indent(good),
		"trailing":      append(slices.Clone(good), ' '),
		"unknown field": bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":1,"x":0,`), 1),
		"version":       bytes.Replace(good, []byte(`{"v":1,`), []byte(`{"v":2,`), 1),
		"null proof":    regexpReplace(good, `"proof":\[[^\]]*\]`, `"proof":null`),
		"negative idx":  bytes.Replace(good, []byte(`"index":11`), []byte(`"index":-1`), 1),
		"float idx":     bytes.Replace(good, []byte(`"index":11`), []byte(`"index":11.0`), 1),
		"bad base64":    bytes.Replace(good, []byte(`"record":"`), []byte(`"record":"!`), 1),
		"empty":         nil,
		"huge":          bytes.Repeat([]byte(" "), MaxReceiptSize+1),
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseReceipt(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func indent(b []byte) []byte {
	var out bytes.Buffer
	json.Indent(&out, b, "", "  ")
	return out.Bytes()
}

func cloneReceipt(r *Receipt) *Receipt {
	b, err := r.Marshal()
	if err != nil {
		panic(err)
	}
	c, err := ParseReceipt(b)
	if err != nil {
		panic(err)
	}
	return c
}

func TestTEEClaimsAttested(t *testing.T) {
	c := TEEClaims{Type: "tdx", Measurement: "ab", Simulated: false}
	if err := c.Attested("tdx", "ab", false); err != nil {
		t.Fatalf("same TEE: %v", err)
	}
	for _, other := range []struct {
		typ, m string
		sim    bool
	}{{"snp", "ab", false}, {"tdx", "cd", false}, {"tdx", "ab", true}} {
		if err := c.Attested(other.typ, other.m, other.sim); err == nil {
			t.Errorf("claims %+v passed as %+v", c, other)
		}
	}
}
