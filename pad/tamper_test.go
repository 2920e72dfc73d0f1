package pad

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/styx-tee/styx/pad/internal/format"
	"github.com/styx-tee/styx/pad/internal/stream"
	"github.com/styx-tee/styx/party"
)

// The tamper suite: every way an attacker can change a Pad must end in ErrTampered, and no
// plaintext of a changed chunk may be released.

var (
	tkOnce           sync.Once
	tOwner, tReader  *party.Key
	tOutsider        *party.Key
	tamperPolicyA    = []byte("permit(principal, action, resource) when { context.purpose == \"research\" };")
	tamperPolicyB    = []byte("permit(principal, action, resource) when { context.purpose == \"anything\" };")
	tamperPayloadLen = 3*ChunkSize + 1000
)

func tamperKeys() {
	tkOnce.Do(func() {
		gen := func() *party.Key {
			k, err := party.Generate()
			if err != nil {
				panic(err)
			}
			return k
		}
		tOwner, tReader, tOutsider = gen(), gen(), gen()
	})
}

func tamperSeal(t testing.TB, plain, policy []byte, pq bool) []byte {
	t.Helper()
	tamperKeys()
	var buf bytes.Buffer
	_, err := Seal(&buf, bytes.NewReader(plain), SealOptions{
		Signer: tOwner, Recipients: []*party.Identity{tOwner.Identity(), tReader.Identity()}, PQ: pq,
		Policy: policy, PolicyType: "application/cedar", Size: int64(len(plain)),
		CreatedAt: time.Unix(1_790_000_000, 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openAll opens p with k and reads all of it. It returns the plaintext released before any error.
func openAll(p []byte, k *party.Key) ([]byte, error) {
	_, r, err := Open(bytes.NewReader(p), k)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = io.Copy(&out, r)
	return out.Bytes(), err
}

func mustTampered(t *testing.T, what string, p []byte) {
	t.Helper()
	if _, err := openAll(p, tReader); !errors.Is(err, ErrTampered) {
		t.Fatalf("%s: got %v, want ErrTampered", what, err)
	}
}

func headerLen(t testing.TB, p []byte) int {
	h, err := Inspect(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return len(h.raw)
}

func TestTamperEveryHeaderByte(t *testing.T) {
	t.Parallel()
	for _, pq := range []bool{false, true} {
		p := tamperSeal(t, make([]byte, 100), tamperPolicyA, pq)
		n := headerLen(t, p)
		versionAt := len(format.Magic)
		for i := range n {
			flips := []byte{0x01, 0x80}
			if raceEnabled {
				flips = flips[:1]
			}
			for _, x := range flips {
				q := bytes.Clone(p)
				q[i] ^= x
				_, err := openAll(q, tReader)
				if i == versionAt {
					// A different version byte is a Pad this build cannot read, not a tampered one.
					if !errors.Is(err, ErrUnsupportedVersion) {
						t.Fatalf("version byte ^%#x: got %v", x, err)
					}
					continue
				}
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("pq %v: header byte %d of %d ^%#x: got %v, want ErrTampered", pq, i, n, x, err)
				}
				if _, err := Inspect(bytes.NewReader(q)); err == nil {
					t.Fatalf("pq %v: Inspect accepts header byte %d ^%#x", pq, i, x)
				}
			}
		}
	}
}

// payloadKeyOf returns the header length and the payload key of p, opened as tReader.
func payloadKeyOf(t *testing.T, p []byte) (int, []byte, uint64) {
	t.Helper()
	f, raw, err := readSigned(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	dk, err := unwrap(&f.Wraps[wrapIndex(f, tReader.Identity().ID())], tReader, f.MarshalCore())
	if err != nil {
		t.Fatal(err)
	}
	return len(raw), deriveKey(dk, ID(f.ID), labelPayload), f.Size
}

// TestTamperEveryChunkByte changes every byte of the first and the last chunk of multi-chunk
// Pads, one at a time. It drives the payload reader directly with the key (checking the header
// once) so that it can afford all of them; a sample goes through Open as well.
func TestTamperEveryChunkByte(t *testing.T) {
	t.Parallel()
	// Every byte of a Pad whose last chunk is partial; every 61st byte of one whose last chunk is
	// full (the same code path, twice the cost).
	for _, size := range []int{tamperPayloadLen, 2 * ChunkSize} {
		plain := make([]byte, size)
		rand.Read(plain)
		p := tamperSeal(t, plain, tamperPolicyA, false)
		hl, key, n := payloadKeyOf(t, p)
		payload := p[hl:]
		lastStart := (len(payload) - 1) / (ChunkSize + stream.Overhead) * (ChunkSize + stream.Overhead)
		ranges := [][2]int{{0, ChunkSize + stream.Overhead}, {lastStart, len(payload)}}
		step := 1
		if size%ChunkSize == 0 {
			step = 61
		}
		if testing.Short() {
			step = 97
		} else if raceEnabled {
			step = max(step, 13)
		}
		for _, rg := range ranges {
			for i := rg[0]; i < rg[1]; i += step {
				payload[i] ^= 0x01
				r, err := stream.NewReader(bytes.NewReader(payload), key, n)
				if err != nil {
					t.Fatal(err)
				}
				// Through Read (no read-ahead goroutine): cheaper for 130 000 runs.
				released, err := io.Copy(io.Discard, struct{ io.Reader }{r})
				if !errors.Is(err, stream.ErrInvalid) {
					t.Fatalf("size %d: payload byte %d: got %v", size, i, err)
				}
				if chunkStart := int64(i / (ChunkSize + stream.Overhead) * ChunkSize); released > chunkStart {
					t.Fatalf("size %d: payload byte %d: released %d bytes, beyond the changed chunk at %d", size, i, released, chunkStart)
				}
				if i%4099 == 0 {
					mustTampered(t, "payload byte via Open", p)
				}
				payload[i] ^= 0x01
			}
		}
	}
}

// chunks splits the payload of p into its encrypted chunks.
func chunks(t *testing.T, p []byte) (header []byte, cs [][]byte) {
	hl := headerLen(t, p)
	header, rest := p[:hl], p[hl:]
	for len(rest) > 0 {
		m := min(len(rest), ChunkSize+stream.Overhead)
		cs = append(cs, rest[:m])
		rest = rest[m:]
	}
	return header, cs
}

func join(header []byte, cs ...[]byte) []byte {
	out := bytes.Clone(header)
	for _, c := range cs {
		out = append(out, c...)
	}
	return out
}

func TestTamperTruncation(t *testing.T) {
	t.Parallel()
	plain := make([]byte, tamperPayloadLen)
	p := tamperSeal(t, plain, tamperPolicyA, false)
	hl := headerLen(t, p)
	// Every cut inside the header.
	for cut := 0; cut < hl; cut++ {
		mustTampered(t, "header cut", p[:cut])
	}
	// At, just before, just after and between every chunk boundary.
	for b := hl; b < len(p); b += ChunkSize + stream.Overhead {
		for _, cut := range []int{b, b + 1, b + stream.Overhead, b + ChunkSize/2, b + ChunkSize + stream.Overhead - 1} {
			if cut < len(p) {
				got, err := openAll(p[:cut], tReader)
				if !errors.Is(err, ErrTampered) {
					t.Fatalf("cut at %d of %d: got %v", cut, len(p), err)
				}
				if len(got) > cut-hl {
					t.Fatalf("cut at %d: released %d bytes", cut, len(got))
				}
			}
		}
	}
	mustTampered(t, "last byte dropped", p[:len(p)-1])
}

func TestTamperReorder(t *testing.T) {
	t.Parallel()
	plain := make([]byte, tamperPayloadLen)
	rand.Read(plain)
	p := tamperSeal(t, plain, tamperPolicyA, false)
	h, c := chunks(t, p)
	other := tamperSeal(t, plain, tamperPolicyA, false)
	_, oc := chunks(t, other)
	cases := map[string][]byte{
		"appended byte":            append(bytes.Clone(p), 0),
		"appended chunk":           join(h, c[0], c[1], c[2], c[3], c[1]),
		"swapped first two":        join(h, c[1], c[0], c[2], c[3]),
		"swapped middle":           join(h, c[0], c[2], c[1], c[3]),
		"duplicated chunk":         join(h, c[0], c[1], c[1], c[2], c[3]),
		"duplicated, last dropped": join(h, c[0], c[1], c[1], c[3]),
		"dropped chunk":            join(h, c[0], c[2], c[3]),
		"dropped last chunk":       join(h, c[0], c[1], c[2]),
		"chunk from another pad":   join(h, c[0], oc[1], c[2], c[3]),
		"payload of another pad":   join(h, oc...),
	}
	for name, q := range cases {
		mustTampered(t, name, q)
	}
}

// TestTamperEndOfStream checks the last-chunk flag with a key holder's forgeries: a final chunk
// sealed without the flag, and a full chunk flagged last in the middle.
func TestTamperEndOfStream(t *testing.T) {
	t.Parallel()
	plain := make([]byte, 2*ChunkSize)
	p := tamperSeal(t, plain, tamperPolicyA, false)
	hl, key, _ := payloadKeyOf(t, p)
	// Re-encrypt the same plaintext as if it were 3 chunks long; keep only the first two. The
	// second chunk then carries the not-last flag where the last one belongs.
	var longer bytes.Buffer
	if err := stream.Encrypt(&longer, bytes.NewReader(make([]byte, 2*ChunkSize+1)), key, 2*ChunkSize+1, nil); err != nil {
		t.Fatal(err)
	}
	forged := append(bytes.Clone(p[:hl]), longer.Bytes()[:2*(ChunkSize+stream.Overhead)]...)
	mustTampered(t, "last chunk without the last flag", forged)
	// Encrypt as a single-chunk stream: its only chunk is flagged last, then append the second.
	var shorter bytes.Buffer
	if err := stream.Encrypt(&shorter, bytes.NewReader(make([]byte, ChunkSize)), key, ChunkSize, nil); err != nil {
		t.Fatal(err)
	}
	forged = append(append(bytes.Clone(p[:hl]), shorter.Bytes()...), p[hl+ChunkSize+stream.Overhead:]...)
	mustTampered(t, "first chunk flagged last", forged)
}

// resign replaces the header of p by f, signed by k: what an attacker holding the signer's key
// (or a careless signer) could produce. The key wraps and MAC must still catch the change.
func resign(f *format.Header, k *party.Key, payload []byte) []byte {
	f.Signer = k.Identity()
	f.Signature = [64]byte(k.Sign(sigDomain, f.MarshalMACed()))
	return append(f.Marshal(), payload...)
}

func parse(t *testing.T, p []byte) (*format.Header, []byte) {
	t.Helper()
	f, raw, err := format.Read(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	return f, p[len(raw):]
}

func TestTamperSplicing(t *testing.T) {
	t.Parallel()
	plain := []byte("one chunk of data")
	a := tamperSeal(t, plain, tamperPolicyA, false)
	b := tamperSeal(t, plain, tamperPolicyB, false)
	fb, _ := parse(t, b)

	f, payload := parse(t, a)
	f.Policy = fb.Policy
	mustTampered(t, "policy from another pad", append(f.Marshal(), payload...))
	f, payload = parse(t, a)
	f.Policy = fb.Policy
	mustTampered(t, "policy from another pad, re-signed by the owner", resign(f, tOwner, payload))
	f, payload = parse(t, a)
	f.Policy = fb.Policy
	mustTampered(t, "policy from another pad, re-signed by an outsider", resign(f, tOutsider, payload))

	f, payload = parse(t, a)
	f.Wraps = fb.Wraps
	mustTampered(t, "key wraps from another pad", append(f.Marshal(), payload...))
	f, payload = parse(t, a)
	f.Wraps = fb.Wraps
	mustTampered(t, "key wraps from another pad, re-signed", resign(f, tOwner, payload))

	f, payload = parse(t, a)
	f.MAC = fb.MAC
	mustTampered(t, "mac from another pad, re-signed", resign(f, tOwner, payload))
	f, payload = parse(t, a)
	f.MAC[0] ^= 1
	mustTampered(t, "changed mac, re-signed", resign(f, tOwner, payload))

	f, payload = parse(t, a)
	f.Signature = fb.Signature
	mustTampered(t, "signature from another pad", append(f.Marshal(), payload...))
	f, payload = parse(t, a)
	f.Signature = [64]byte(tOutsider.Sign(sigDomain, f.MarshalMACed()))
	mustTampered(t, "forged signature", append(f.Marshal(), payload...))
	f, payload = parse(t, a)
	f.Signature = [64]byte{}
	mustTampered(t, "zero signature", append(f.Marshal(), payload...))
	f, payload = parse(t, a)
	mustTampered(t, "removed signature", append(f.MarshalMACed(), payload...))
	mustTampered(t, "re-signed by an outsider", resign(f, tOutsider, payload))

	f, payload = parse(t, a)
	f.ID = fb.ID
	mustTampered(t, "pad id from another pad, re-signed", resign(f, tOwner, payload))
	f, payload = parse(t, a)
	f.Size++
	mustTampered(t, "size changed, re-signed", resign(f, tOwner, payload))
	_, pb := parse(t, b)
	f, _ = parse(t, a)
	mustTampered(t, "payload of another pad", append(f.Marshal(), pb...))
}

func TestInspectVerifiesSignature(t *testing.T) {
	t.Parallel()
	a := tamperSeal(t, []byte("x"), tamperPolicyA, false)
	f, payload := parse(t, a)
	f.Policy = tamperPolicyB
	if _, err := Inspect(bytes.NewReader(append(f.Marshal(), payload...))); !errors.Is(err, ErrTampered) {
		t.Fatalf("Inspect of a changed policy: %v", err)
	}
}
