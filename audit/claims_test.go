package audit

import (
	"errors"
	"strings"
	"testing"
)

func TestClaimsValidate(t *testing.T) {
	if c := testClaims(); c.Validate() != nil {
		t.Fatal("test claims invalid")
	}
	long := strings.Repeat("x", maxIDLen+1)
	cases := map[string]func(*Claims){
		"unknown kind":        func(c *Claims) { c.Kind = "train" },
		"empty kind":          func(c *Claims) { c.Kind = "" },
		"no job":              func(c *Claims) { c.Job = "" },
		"long job":            func(c *Claims) { c.Job = long },
		"program with space":  func(c *Claims) { c.Program = "sha256 1234" },
		"input without pad":   func(c *Claims) { c.Inputs[0].Pad = "" },
		"input without pol":   func(c *Claims) { c.Inputs[0].Policy = "" },
		"output non-ascii":    func(c *Claims) { c.Outputs[0].Pad = "pad\u00e9" },
		"too many inputs":     func(c *Claims) { c.Inputs = make([]PadRef, maxRefs+1) },
		"too many outputs":    func(c *Claims) { c.Outputs = make([]PadRef, maxRefs+1) },
		"release, no recip":   func(c *Claims) { c.Kind = ReceiptRelease },
		"recipient with tab":  func(c *Claims) { c.Recipient = "styxid1\tx" },
		"no tee type":         func(c *Claims) { c.TEE.Type = "" },
		"sim not simulated":   func(c *Claims) { c.TEE.Simulated = false },
		"measurement control": func(c *Claims) { c.TEE.Measurement = "00\x00" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := testClaims()
			mutate(&c)
			if err := c.Validate(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	// A real TEE may be marked simulated (a test rig), never the reverse.
	c := testClaims()
	c.TEE = TEEClaims{Type: "tdx", Simulated: true}
	if err := c.Validate(); err != nil {
		t.Fatalf("tdx marked simulated: %v", err)
	}
}

func TestClaimsPads(t *testing.T) {
	c := Claims{
		Inputs:  []PadRef{{"a", "p"}, {"b", "p"}, {"a", "q"}},
		Outputs: []PadRef{{"c", "p"}, {"b", "p"}},
	}
	if got := strings.Join(c.pads(), ","); got != "a,b,c" {
		t.Fatalf("pads %s, want a,b,c", got)
	}
}

func TestReceiptEncodingGolden(t *testing.T) {
	r := &Receipt{
		Claims: Claims{Kind: ReceiptRelease, Job: "rel-1", Recipient: "styxid1r", TEE: TEEClaims{Type: "snp"}},
		Index:  0,
		Record: []byte("{}"),
		Head:   []byte("o\n1\n\n— o AAAA\n"),
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"claims":{"kind":"release","job":"rel-1","recipient":"styxid1r","tee":{"type":"snp","simulated":false}},"index":0,"record":"e30=","proof":[],"head":"o\n1\n\n— o AAAA\n"}`
	if string(b) != want {
		t.Fatalf("receipt encoding\n got %s\nwant %s", b, want)
	}
	// It parses (shape only) but cannot verify: the record is not an event.
	p, err := ParseReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Verify(clusterPub()); err == nil {
		t.Fatal("a receipt with a fake head verified")
	}
}
