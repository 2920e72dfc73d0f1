//go:build ignore

// gen writes the Pad test vectors in vectors/: valid Pads and one vector per kind of tampering.
// Run it from this directory with `go run gen.go`. The party keys in keys/ are fixed (created
// on the first run and committed); Pad ids, data keys and HPKE encapsulations are random, so a
// new run writes different but equally valid vectors.
//
// A vector file is a few "name: value" lines, an empty line, then the Pad bytes:
//
//	expect: success | tampered | malformed | unsupported version | not recipient
//	key: alice            (the party key in keys/ that opens it), or
//	data key: HEX         (for a derived Pad, opened with OpenWithKey)
//	payload: SHA256HEX    (for success: the digest of the plaintext)
//	comment: what the vector shows
package main

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/pad/internal/format"
	"github.com/styx-tee/styx/pad/internal/stream"
	"github.com/styx-tee/styx/party"
)

var keys = map[string]*party.Key{}

var (
	policy     = []byte("permit(principal, action == Action::\"use\", resource) when { context.purpose == \"research\" };\n")
	policyB    = []byte("permit(principal, action, resource);\n")
	policyType = "application/cedar"
	created    = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

func main() {
	log.SetFlags(0)
	for _, name := range []string{"alice", "bob", "carol", "cluster"} {
		keys[name] = loadOrCreate(name)
	}
	os.MkdirAll("vectors", 0o755)
	valid()
	headerTampering()
	payloadTampering()
}

func loadOrCreate(name string) *party.Key {
	path := filepath.Join("keys", name+".key")
	if data, err := os.ReadFile(path); err == nil {
		k, err := party.ParseKey(data)
		if err != nil {
			log.Fatal(err)
		}
		return k
	}
	k, err := party.Generate()
	if err != nil {
		log.Fatal(err)
	}
	os.MkdirAll("keys", 0o755)
	if err := os.WriteFile(path, k.Marshal(created), 0o600); err != nil {
		log.Fatal(err)
	}
	return k
}

// plaintext is a fixed, recognisable payload of n bytes.
func plaintext(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

type vector struct {
	name, expect, key, comment string
	dataKey                    *pad.DataKey
	plain                      []byte
	pad                        []byte
}

func (v vector) write() {
	var b bytes.Buffer
	fmt.Fprintf(&b, "expect: %s\n", v.expect)
	if v.dataKey != nil {
		fmt.Fprintf(&b, "data key: %x\n", v.dataKey[:])
	} else {
		fmt.Fprintf(&b, "key: %s\n", v.key)
	}
	if v.expect == "success" {
		sum := sha256.Sum256(v.plain)
		fmt.Fprintf(&b, "payload: %s\n", hex.EncodeToString(sum[:]))
	}
	fmt.Fprintf(&b, "comment: %s\n\n", v.comment)
	b.Write(v.pad)
	if err := os.WriteFile(filepath.Join("vectors", v.name), b.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

func seal(plain []byte, opts pad.SealOptions) []byte {
	if opts.Signer == nil {
		opts.Signer = keys["alice"]
	}
	if opts.Policy == nil {
		opts.Policy, opts.PolicyType = policy, policyType
	}
	if opts.Recipients == nil && opts.DataKey == nil {
		opts.Recipients = []*party.Identity{keys["alice"].Identity(), keys["bob"].Identity()}
	}
	opts.Size, opts.CreatedAt = int64(len(plain)), created
	var buf bytes.Buffer
	if _, err := pad.Seal(&buf, bytes.NewReader(plain), opts); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

func valid() {
	ok := func(name, key, comment string, plain []byte, opts pad.SealOptions) {
		vector{name: name, expect: "success", key: key, comment: comment, plain: plain, pad: seal(plain, opts)}.write()
	}
	ok("valid_empty", "alice", "a zero-length payload is one empty last chunk", nil, pad.SealOptions{})
	ok("valid_small_second_recipient", "bob", "opened by the second recipient", plaintext(100), pad.SealOptions{})
	ok("valid_one_full_chunk", "alice", "exactly 65536 bytes: one full chunk flagged last", plaintext(pad.ChunkSize), pad.SealOptions{})
	ok("valid_multi_chunk", "bob", "two full chunks and a partial last chunk", plaintext(2*pad.ChunkSize+100), pad.SealOptions{})
	ok("valid_pq", "bob", "key wraps with ML-KEM-768+X25519", plaintext(1000), pad.SealOptions{PQ: true})
	ok("valid_content_type", "alice", "a content type with parameters", plaintext(10), pad.SealOptions{ContentType: "text/csv; charset=utf-8"})

	dk := new(pad.DataKey)
	copy(dk[:], bytes.Repeat([]byte{0x42}, 32))
	plain := plaintext(pad.ChunkSize + 1)
	parents := []pad.ParentRef{{ID: pad.ID{1}, PolicyDigest: sha256.Sum256(policy)}, {ID: pad.ID{2}, PolicyDigest: sha256.Sum256(policyB)}}
	p := seal(plain, pad.SealOptions{Signer: keys["cluster"], DataKey: dk, Parents: parents})
	vector{name: "valid_derived", expect: "success", dataKey: dk, comment: "derived pad: signed by the cluster, two parents, no key wraps", plain: plain, pad: p}.write()
	vector{name: "derived_wrong_data_key", expect: "tampered", dataKey: new(pad.DataKey), comment: "the header mac does not verify under another data key", pad: p}.write()
	vector{name: "derived_party_key", expect: "not recipient", key: "alice", comment: "a derived pad has no key wrap for a party", pad: p}.write()
}

func bad(name, expect, comment string, p []byte) {
	vector{name: name, expect: expect, key: "bob", comment: comment, pad: p}.write()
}

func parse(p []byte) (*format.Header, []byte) {
	f, raw, err := format.Read(bytes.NewReader(p))
	if err != nil {
		log.Fatal(err)
	}
	return f, p[len(raw):]
}

func resign(f *format.Header, k *party.Key, payload []byte) []byte {
	f.Signer = k.Identity()
	f.Signature = [64]byte(k.Sign("styx pad header v1", f.MarshalMACed()))
	return append(f.Marshal(), payload...)
}

func headerTampering() {
	a := seal(plaintext(100), pad.SealOptions{})
	b := seal(plaintext(100), pad.SealOptions{Policy: policyB, PolicyType: policyType})
	fb, _ := parse(b)
	hl := len(a) - int(stream.EncryptedSize(100))

	vector{name: "not_recipient", expect: "not recipient", key: "carol", comment: "carol has no key wrap", pad: a}.write()

	q := bytes.Clone(a)
	q[0] = 'S'
	bad("bad_magic", "malformed", "the magic is not styx-pad", q)
	q = bytes.Clone(a)
	q[len(format.Magic)] = 2
	bad("version_2", "unsupported version", "a version this build does not read", q)
	bad("header_truncated", "malformed", "the input ends inside the header", a[:hl/2])
	q = bytes.Clone(a)
	binary.BigEndian.PutUint32(q[len(format.Magic)+1+16+8+8+4+2+len(keys["alice"].Identity().Bytes())+1+len(pad.DefaultContentType)+1+len(policyType):], 1<<31)
	bad("policy_length_huge", "malformed", "a policy length over the limit is refused before it is read", q)

	f, payload := parse(a)
	i := bytes.Index(a, policy) + 10
	q = bytes.Clone(a)
	q[i] ^= 0x20
	bad("policy_byte_changed", "tampered", "one byte of the policy changed: the signature fails", q)

	f, payload = parse(a)
	f.Policy = fb.Policy
	bad("policy_swapped", "tampered", "the policy of another pad", append(f.Marshal(), payload...))
	f, payload = parse(a)
	f.Policy = fb.Policy
	bad("policy_swapped_resigned", "tampered", "the policy of another pad, re-signed by the owner: the key wraps bind the old policy", resign(f, keys["alice"], payload))

	f, payload = parse(a)
	f.Wraps = fb.Wraps
	bad("wrap_spliced", "tampered", "the key wraps of another pad", append(f.Marshal(), payload...))
	f, payload = parse(a)
	f.Wraps = fb.Wraps
	bad("wrap_spliced_resigned", "tampered", "the key wraps of another pad, re-signed: hpke info binds the header core", resign(f, keys["alice"], payload))

	f, payload = parse(a)
	f.MAC[31] ^= 1
	bad("mac_changed_resigned", "tampered", "a changed mac, re-signed: the mac does not verify", resign(f, keys["alice"], payload))

	f, payload = parse(a)
	f.Signature = [64]byte(keys["carol"].Sign("styx pad header v1", f.MarshalMACed()))
	bad("signature_forged", "tampered", "signed by carol, who is not the signer", append(f.Marshal(), payload...))
	bad("signature_removed", "tampered", "the signature is missing", append(f.MarshalMACed(), payload...))
	bad("resigned_by_outsider", "tampered", "carol replaced the signer and signed: the key wraps bind the signer", resign(f, keys["carol"], payload))
}

func payloadTampering() {
	// Two chunks for the changes, three for the reorderings.
	two, three := split(plaintext(pad.ChunkSize+100)), split(plaintext(2*pad.ChunkSize+100))
	q := bytes.Clone(two.pad)
	q[len(two.header)+1000] ^= 1
	bad("chunk_first_byte_changed", "tampered", "one byte of the first chunk changed", q)
	q = bytes.Clone(two.pad)
	q[len(q)-20] ^= 1
	bad("chunk_last_byte_changed", "tampered", "one byte of the last chunk changed", q)
	bad("truncated_at_boundary", "tampered", "the last chunk is missing", two.join(0))
	bad("truncated_mid_chunk", "tampered", "cut inside the second chunk", two.pad[:len(two.header)+pad.ChunkSize+stream.Overhead+50])
	bad("truncated_payload_empty", "tampered", "the header alone", two.join())
	bad("appended_byte", "tampered", "one byte after the last chunk", append(bytes.Clone(two.pad), 0))
	bad("chunks_swapped", "tampered", "the first two chunks swapped", three.join(1, 0, 2))
	bad("chunk_duplicated", "tampered", "the first chunk repeated in place of the second", three.join(0, 0, 2))
	bad("chunk_dropped", "tampered", "the second chunk dropped", three.join(0, 2))

	// A key holder's forgery: re-encrypt the payload as if it were longer, so that the real last
	// chunk carries the not-last flag.
	f, payload := parse(two.pad)
	key := payloadKey(unwrapBob(f), f.ID)
	longer := append(plaintext(pad.ChunkSize+100), make([]byte, pad.ChunkSize)...)
	var b bytes.Buffer
	if err := stream.Encrypt(&b, bytes.NewReader(longer), key, uint64(len(longer)), nil); err != nil {
		log.Fatal(err)
	}
	bad("last_flag_missing", "tampered", "the last chunk sealed without the last-chunk flag", append(bytes.Clone(two.header), b.Bytes()[:len(payload)]...))
}

type splitPad struct {
	pad, header []byte
	chunks      [][]byte
}

func split(plain []byte) splitPad {
	p := seal(plain, pad.SealOptions{})
	_, payload := parse(p)
	s := splitPad{pad: p, header: p[:len(p)-len(payload)]}
	for len(payload) > 0 {
		n := min(len(payload), pad.ChunkSize+stream.Overhead)
		s.chunks, payload = append(s.chunks, payload[:n]), payload[n:]
	}
	return s
}

func (s splitPad) join(idx ...int) []byte {
	out := bytes.Clone(s.header)
	for _, i := range idx {
		out = append(out, s.chunks[i]...)
	}
	return out
}

// unwrapBob and payloadKey re-implement the key schedule of docs/pad-format.md independently of
// package pad, so that the generator checks the specification as well as the code.
func unwrapBob(f *format.Header) []byte {
	bob := keys["bob"]
	for _, w := range f.Wraps {
		if w.Recipient != bob.Identity().ID() {
			continue
		}
		sk, err := bob.HPKEPrivateKey(w.KEM)
		if err != nil {
			log.Fatal(err)
		}
		core := sha256.Sum256(f.MarshalCore())
		info := append([]byte("styx pad v1 key wrap\x00"), core[:]...)
		r, err := hpke.NewRecipient(w.Enc, sk, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
		if err != nil {
			log.Fatal(err)
		}
		aad := binary.BigEndian.AppendUint16(bytes.Clone(w.Recipient[:]), w.KEM)
		dk, err := r.Open(aad, w.Key[:])
		if err != nil {
			log.Fatal(err)
		}
		return dk
	}
	log.Fatal("no wrap for bob")
	return nil
}

func payloadKey(dk []byte, id [16]byte) []byte {
	k, err := hkdf.Key(sha256.New, dk, id[:], "styx pad v1 payload", 32)
	if err != nil {
		log.Fatal(err)
	}
	return k
}
