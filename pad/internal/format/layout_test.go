package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/styx-tee/styx/party"
)

// TestLayout checks the encoding byte by byte against docs/pad-format.md.
func TestLayout(t *testing.T) {
	h := sample(t)
	b := h.Marshal()
	signer := h.Signer.Bytes()
	p := 0
	take := func(n int) []byte {
		t.Helper()
		if p+n > len(b) {
			t.Fatalf("encoding ends at %d, want %d more bytes", len(b), n)
		}
		v := b[p : p+n]
		p += n
		return v
	}
	expect := func(what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got %x, want %x", what, got, want)
		}
	}
	u16 := func(v int) []byte { return binary.BigEndian.AppendUint16(nil, uint16(v)) }
	u32 := func(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

	expect("magic", take(8), []byte("styx-pad"))
	expect("version", take(1), []byte{1})
	expect("pad id", take(16), h.ID[:])
	expect("created", take(8), u64(h.Created))
	expect("size", take(8), u64(h.Size))
	expect("chunk size", take(4), []byte{0, 1, 0, 0})
	expect("signer length", take(2), u16(len(signer)))
	expect("signer", take(len(signer)), signer)
	expect("content type length", take(1), []byte{byte(len(h.ContentType))})
	expect("content type", take(len(h.ContentType)), []byte(h.ContentType))
	expect("policy type length", take(1), []byte{byte(len(h.PolicyType))})
	expect("policy type", take(len(h.PolicyType)), []byte(h.PolicyType))
	expect("policy length", take(4), u32(len(h.Policy)))
	expect("policy", take(len(h.Policy)), h.Policy)
	expect("parent count", take(1), []byte{byte(len(h.Parents))})
	for _, pr := range h.Parents {
		expect("parent id", take(16), pr.ID[:])
		expect("parent digest", take(32), pr.PolicyDigest[:])
	}
	if p != len(h.MarshalCore()) {
		t.Fatalf("core ends at %d, MarshalCore is %d bytes", p, len(h.MarshalCore()))
	}
	expect("wrap count", take(1), []byte{byte(len(h.Wraps))})
	for _, w := range h.Wraps {
		expect("recipient", take(32), w.Recipient[:])
		expect("kem", take(2), u16(int(w.KEM)))
		expect("enc", take(EncSize(w.KEM)), w.Enc)
		expect("wrapped key", take(WrappedKeySize), w.Key[:])
	}
	if p != len(h.MarshalUnsigned()) {
		t.Fatalf("wraps end at %d, MarshalUnsigned is %d bytes", p, len(h.MarshalUnsigned()))
	}
	expect("mac", take(32), h.MAC[:])
	expect("signature", take(64), h.Signature[:])
	if p != len(b) {
		t.Fatalf("%d bytes after the signature", len(b)-p)
	}
}

func TestMarshalPrefixes(t *testing.T) {
	h := sample(t)
	core, unsigned, maced, all := h.MarshalCore(), h.MarshalUnsigned(), h.MarshalMACed(), h.Marshal()
	for _, c := range []struct {
		name          string
		prefix, whole []byte
		extra         int
	}{
		{"core in unsigned", core, unsigned, 1 + 2*(32+2+WrappedKeySize) + EncSizeX25519 + EncSizeXWing},
		{"unsigned in maced", unsigned, maced, MACSize},
		{"maced in all", maced, all, SignatureSize},
	} {
		if !bytes.HasPrefix(c.whole, c.prefix) || len(c.whole)-len(c.prefix) != c.extra {
			t.Errorf("%s: prefix %v, extra %d, want %d", c.name, bytes.HasPrefix(c.whole, c.prefix), len(c.whole)-len(c.prefix), c.extra)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(h *Header)
		msg    string
		large  bool
	}{
		{"no signer", func(h *Header) { h.Signer = nil }, "no signer", false},
		{"created", func(h *Header) { h.Created = 1 << 63 }, "creation time", false},
		{"size", func(h *Header) { h.Size = MaxSize + 1 }, "plaintext size", true},
		{"empty content type", func(h *Header) { h.ContentType = "" }, "empty content type", false},
		{"long content type", func(h *Header) { h.ContentType = strings.Repeat("a", MaxTypeLen+1) }, "content type is 256", true},
		{"content type newline", func(h *Header) { h.ContentType = "a\nb" }, "outside printable ASCII", false},
		{"content type del", func(h *Header) { h.ContentType = "a\x7f" }, "outside printable ASCII", false},
		{"empty policy type", func(h *Header) { h.PolicyType = "" }, "empty policy type", false},
		{"long policy type", func(h *Header) { h.PolicyType = strings.Repeat("a", 300) }, "policy type is 300", true},
		{"empty policy", func(h *Header) { h.Policy = []byte{} }, "empty policy", false},
		{"large policy", func(h *Header) { h.Policy = make([]byte, MaxPolicySize+1) }, "policy is 65537", true},
		{"many parents", func(h *Header) { h.Parents = make([]Parent, MaxParents+1) }, "parent list is 65", true},
		{"parents repeated", func(h *Header) { h.Parents = []Parent{{}, {}} }, "parents not sorted or repeated", false},
		{"many wraps", func(h *Header) { h.Wraps = make([]Wrap, MaxWraps+1) }, "key wrap list is 17", true},
		{"unknown kem", func(h *Header) { h.Wraps[0].KEM = 0x0011 }, "unknown kem 0x0011", false},
		{"short enc", func(h *Header) { h.Wraps[0].Enc = h.Wraps[0].Enc[:31] }, "encapsulation is 31 bytes, want 32", false},
		{"long enc", func(h *Header) { h.Wraps[1].Enc = append(h.Wraps[1].Enc, 0) }, "encapsulation is 1121 bytes, want 1120", false},
		{"wraps repeated", func(h *Header) { h.Wraps[1].Recipient = h.Wraps[0].Recipient }, "key wraps not sorted or repeated", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := sample(t)
			c.change(h)
			err := h.Validate()
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Validate = %v, want %q", err, c.msg)
			}
			if errors.Is(err, ErrTooLarge) != c.large {
				t.Fatalf("ErrTooLarge = %v, want %v", errors.Is(err, ErrTooLarge), c.large)
			}
			if errors.Is(err, ErrTampered) {
				t.Fatal("Validate claims tampering")
			}
			if err := h.Check(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check = %v, want ErrMalformed", err)
			}
		})
	}
	if err := sample(t).Validate(); err != nil {
		t.Fatalf("the sample is invalid: %v", err)
	}
}

func TestReadOneByteAtATime(t *testing.T) {
	b := sample(t).Marshal()
	h, raw, err := Read(iotest.OneByteReader(bytes.NewReader(b)))
	if err != nil || !bytes.Equal(raw, b) || !bytes.Equal(h.Marshal(), b) {
		t.Fatalf("Read through a one-byte reader: %v", err)
	}
}

// TestEveryByteFlip changes each byte of a header: the result must either be refused or parse
// to a header that encodes back to exactly the changed bytes (one encoding per header).
func TestEveryByteFlip(t *testing.T) {
	good := sample(t).Marshal()
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x5a
		h, raw, err := read(b)
		if err != nil {
			if h != nil || raw != nil {
				t.Fatalf("byte %d: values with an error", i)
			}
			continue
		}
		if !bytes.Equal(h.Marshal(), raw) || !bytes.Equal(raw, b[:len(raw)]) {
			t.Fatalf("byte %d: parsed header does not encode back to its bytes", i)
		}
	}
}

func TestIdentityKinds(t *testing.T) {
	// The signer field holds a whole identity; an id or a truncated identity does not parse.
	h := sample(t)
	id := h.Signer.ID()
	b := h.Marshal()
	off := offsets(h)
	bad := append(bytes.Clone(b[:off["signer length"]]), 0, 32)
	bad = append(bad, id[:]...)
	bad = append(bad, b[off["content type length"]:]...)
	if _, _, err := read(bad); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "signer identity") {
		t.Fatalf("an id in place of an identity: %v", err)
	}
	var zero party.ID
	if zero == id {
		t.Fatal("zero id")
	}
}
