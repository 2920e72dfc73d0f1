package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/styx-tee/styx/party"
)

var (
	keyOnce sync.Once
	testKey *party.Key
)

func signer(t testing.TB) *party.Identity {
	keyOnce.Do(func() {
		k, err := party.Generate()
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey.Identity()
}

// sample returns a valid header with every section populated.
func sample(t testing.TB) *Header {
	h := &Header{
		ID:          [16]byte{1, 2, 3},
		Created:     1_790_000_000,
		Size:        3*ChunkSize + 5,
		Signer:      signer(t),
		ContentType: "text/csv; charset=utf-8",
		PolicyType:  "application/styx-policy+yaml",
		Policy:      []byte("version: 1\n"),
		Parents:     []Parent{{ID: [16]byte{1}}, {ID: [16]byte{2}, PolicyDigest: [32]byte{9}}},
		Wraps: []Wrap{
			{Recipient: party.ID{1}, KEM: party.KEMX25519, Enc: bytes.Repeat([]byte{7}, EncSizeX25519)},
			{Recipient: party.ID{2}, KEM: party.KEMXWing, Enc: bytes.Repeat([]byte{8}, EncSizeXWing)},
		},
	}
	h.MAC[0], h.Signature[63] = 0xaa, 0xbb
	return h
}

func read(b []byte) (*Header, []byte, error) { return Read(bytes.NewReader(b)) }

func TestRoundTrip(t *testing.T) {
	h := sample(t)
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	b := h.Marshal()
	got, raw, err := read(append(bytes.Clone(b), "payload"...))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, b) {
		t.Fatal("raw bytes differ from the encoding")
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("Marshal(Read(b)) != b")
	}
	if got.ContentType != h.ContentType || got.Size != h.Size || !got.Signer.Equal(h.Signer) || len(got.Wraps) != 2 || len(got.Parents) != 2 {
		t.Fatalf("fields differ: %+v", got)
	}
}

func TestReadLeavesPayload(t *testing.T) {
	b := sample(t).Marshal()
	r := bytes.NewReader(append(bytes.Clone(b), "rest"...))
	if _, _, err := Read(r); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if string(rest) != "rest" {
		t.Fatalf("Read consumed payload bytes: left %q", rest)
	}
}

func TestMinimalHeader(t *testing.T) {
	h := sample(t)
	h.Parents, h.Wraps, h.Size = nil, nil, 0
	h.ContentType, h.PolicyType, h.Policy = "a", "b", []byte{0}
	got, _, err := read(h.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Marshal(), h.Marshal()) {
		t.Fatal("round trip")
	}
}

func TestMaximalHeader(t *testing.T) {
	h := sample(t)
	h.ContentType = strings.Repeat("c", MaxTypeLen)
	h.PolicyType = strings.Repeat("p", MaxTypeLen)
	h.Policy = bytes.Repeat([]byte{'x'}, MaxPolicySize)
	h.Parents = make([]Parent, MaxParents)
	for i := range h.Parents {
		h.Parents[i].ID[15] = byte(i)
	}
	h.Wraps = make([]Wrap, MaxWraps)
	for i := range h.Wraps {
		h.Wraps[i] = Wrap{Recipient: party.ID{byte(i)}, KEM: party.KEMXWing, Enc: make([]byte, EncSizeXWing)}
	}
	b := h.Marshal()
	if len(b) > MaxHeaderSize {
		t.Fatalf("largest valid header is %d bytes, over MaxHeaderSize %d", len(b), MaxHeaderSize)
	}
	t.Logf("largest valid header: %d bytes", len(b))
	if _, _, err := read(b); err != nil {
		t.Fatal(err)
	}
}

// offsets of fields in the sample header's encoding.
func offsets(h *Header) map[string]int {
	sig := len(h.Signer.Bytes())
	o := map[string]int{"version": len(Magic)}
	o["created"] = o["version"] + 1 + IDSize
	o["size"] = o["created"] + 8
	o["chunk size"] = o["size"] + 8
	o["signer length"] = o["chunk size"] + 4
	o["signer"] = o["signer length"] + 2
	o["content type length"] = o["signer"] + sig
	o["policy type length"] = o["content type length"] + 1 + len(h.ContentType)
	o["policy length"] = o["policy type length"] + 1 + len(h.PolicyType)
	o["parent count"] = o["policy length"] + 4 + len(h.Policy)
	o["wrap count"] = o["parent count"] + 1 + len(h.Parents)*(IDSize+DigestSize)
	o["first kem"] = o["wrap count"] + 1 + 32
	return o
}

func TestReadRefuses(t *testing.T) {
	h := sample(t)
	good := h.Marshal()
	off := offsets(h)
	put := func(field string, v any) []byte {
		b := bytes.Clone(good)
		switch v := v.(type) {
		case uint8:
			b[off[field]] = v
		case uint16:
			binary.BigEndian.PutUint16(b[off[field]:], v)
		case uint32:
			binary.BigEndian.PutUint32(b[off[field]:], v)
		case uint64:
			binary.BigEndian.PutUint64(b[off[field]:], v)
		}
		return b
	}
	mutate := func(f func(h *Header)) []byte {
		h := sample(t)
		f(h)
		return h.Marshal()
	}
	cases := []struct {
		name string
		in   []byte
		want error
		msg  string
	}{
		{"empty", nil, ErrMalformed, "empty input"},
		{"not a pad", []byte("age-encryption.org/v1\n"), ErrMalformed, "not a pad"},
		{"version 0", put("version", uint8(0)), ErrUnsupportedVersion, "version 0"},
		{"version 2", put("version", uint8(2)), ErrUnsupportedVersion, "version 2"},
		{"created out of range", put("created", uint64(1<<63)), ErrMalformed, "creation time"},
		{"size out of range", put("size", uint64(1<<62)), ErrMalformed, "size"},
		{"chunk size", put("chunk size", uint32(1<<20)), ErrMalformed, "chunk size"},
		{"signer too long", put("signer length", uint16(60000)), ErrTooLarge, "signer identity"},
		{"signer short", put("signer length", uint16(1280)), ErrMalformed, "signer identity"},
		{"signer version", put("signer", uint8(9)), ErrMalformed, "signer identity"},
		{"empty content type", put("content type length", uint8(0)), ErrMalformed, "empty content type"},
		{"empty policy type", put("policy type length", uint8(0)), ErrMalformed, "empty policy type"},
		{"empty policy", put("policy length", uint32(0)), ErrMalformed, "empty policy"},
		{"huge policy", put("policy length", uint32(1<<31)), ErrTooLarge, "policy is"},
		{"too many parents", put("parent count", uint8(MaxParents+1)), ErrTooLarge, "parent list"},
		{"too many wraps", put("wrap count", uint8(MaxWraps+1)), ErrTooLarge, "key wrap list"},
		{"unknown kem", put("first kem", uint16(0x0010)), ErrMalformed, "unknown kem"},
		{"content type control char", mutate(func(h *Header) { h.ContentType = "a\x00" }), ErrMalformed, "printable"},
		{"policy type high byte", mutate(func(h *Header) { h.PolicyType = "é" }), ErrMalformed, "printable"},
		{"parents unsorted", mutate(func(h *Header) { h.Parents[0], h.Parents[1] = h.Parents[1], h.Parents[0] }), ErrMalformed, "parents not sorted"},
		{"parents repeated", mutate(func(h *Header) { h.Parents[1].ID = h.Parents[0].ID }), ErrMalformed, "parents not sorted or repeated"},
		{"wraps unsorted", mutate(func(h *Header) { h.Wraps[0], h.Wraps[1] = h.Wraps[1], h.Wraps[0] }), ErrMalformed, "key wraps not sorted"},
		{"wraps repeated", mutate(func(h *Header) { h.Wraps[1].Recipient = h.Wraps[0].Recipient }), ErrMalformed, "key wraps not sorted or repeated"},
		{"truncated in signature", good[:len(good)-1], ErrMalformed, "truncated in signature"},
		{"truncated in mac", good[:len(good)-SignatureSize-1], ErrMalformed, "truncated in mac"},
		{"truncated in magic", good[:3], ErrMalformed, "truncated in magic"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := read(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not say %q", err, c.msg)
			}
			if c.want == ErrTooLarge && !errors.Is(err, ErrMalformed) {
				t.Fatalf("a header over a limit is not malformed: %v", err)
			}
			if c.want != ErrUnsupportedVersion && !errors.Is(err, ErrTampered) {
				t.Fatalf("not ErrTampered: %v", err)
			}
		})
	}
}

func TestEveryTruncationRefused(t *testing.T) {
	good := sample(t).Marshal()
	for n := range len(good) {
		if _, _, err := read(good[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}

func TestHeaderCapStopsReading(t *testing.T) {
	// A reader that never ends: Read must stop at MaxHeaderSize, not read forever.
	h := sample(t)
	h.Policy = bytes.Repeat([]byte{'x'}, MaxPolicySize)
	h.Wraps = nil
	h.Parents = nil
	prefix := h.MarshalCore()
	prefix = prefix[:len(prefix)-1]
	r := io.MultiReader(bytes.NewReader(prefix), bytes.NewReader([]byte{MaxParents}), zeros{})
	_, _, err := Read(r)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, _, err := Read(io.MultiReader(bytes.NewReader([]byte(Magic)), errReader{boom}))
	if !errors.Is(err, boom) || errors.Is(err, ErrTampered) {
		t.Fatalf("an i/o error is reported as %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestValidateHasNoTamperSentinel(t *testing.T) {
	h := sample(t)
	h.Policy = nil
	err := h.Validate()
	if err == nil || errors.Is(err, ErrTampered) {
		t.Fatalf("Validate: %v", err)
	}
	h = sample(t)
	h.Policy = make([]byte, MaxPolicySize+1)
	if err := h.Validate(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestEncSize(t *testing.T) {
	if EncSize(party.KEMX25519) != 32 || EncSize(party.KEMXWing) != 1120 || EncSize(0) != 0 {
		t.Fatal("EncSize")
	}
}

func FuzzRead(f *testing.F) {
	h := sample(f)
	f.Add(h.Marshal())
	h.Parents, h.Wraps = nil, nil
	f.Add(h.Marshal())
	f.Add([]byte(Magic + "\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, raw, err := read(b)
		if err != nil {
			if h != nil || raw != nil {
				t.Fatal("values returned with an error")
			}
			return
		}
		if !bytes.Equal(raw, b[:len(raw)]) {
			t.Fatal("raw is not a prefix of the input")
		}
		if !bytes.Equal(h.Marshal(), raw) {
			t.Fatalf("Marshal(Read(x)) != x")
		}
		if err := h.Check(); err != nil {
			t.Fatalf("Read returned a header that fails Check: %v", err)
		}
	})
}
