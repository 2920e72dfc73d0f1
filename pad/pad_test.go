package pad_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

var (
	keysOnce          sync.Once
	alice, bob, carol *party.Key
	clusterKey        *party.Key
	testPolicy        = []byte("permit(principal, action == Action::\"use\", resource);\n")
	testPolicyType    = "application/cedar"
	testCreated       = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		gen := func() *party.Key {
			k, err := party.Generate()
			if err != nil {
				panic(err)
			}
			return k
		}
		alice, bob, carol, clusterKey = gen(), gen(), gen(), gen()
	})
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func seal(t testing.TB, plain []byte, opts pad.SealOptions) []byte {
	t.Helper()
	keys(t)
	if opts.Signer == nil {
		opts.Signer = alice
	}
	if opts.Policy == nil {
		opts.Policy, opts.PolicyType = testPolicy, testPolicyType
	}
	if opts.Recipients == nil && opts.DataKey == nil {
		opts.Recipients = []*party.Identity{alice.Identity(), bob.Identity()}
	}
	if opts.CreatedAt.IsZero() {
		opts.CreatedAt = testCreated
	}
	opts.Size = int64(len(plain))
	var buf bytes.Buffer
	h, err := pad.Seal(&buf, bytes.NewReader(plain), opts)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if !bytes.Equal(h.Bytes(), buf.Bytes()[:len(h.Bytes())]) {
		t.Fatal("Seal returned a header that is not the one it wrote")
	}
	return buf.Bytes()
}

func open(p []byte, k *party.Key) ([]byte, *pad.Header, error) {
	h, r, err := pad.Open(bytes.NewReader(p), k)
	if err != nil {
		return nil, nil, err
	}
	out, err := io.ReadAll(r)
	return out, h, err
}

func TestRoundTripSizes(t *testing.T) {
	keys(t)
	for _, n := range []int{0, 1, 100, pad.ChunkSize - 1, pad.ChunkSize, pad.ChunkSize + 1, 3*pad.ChunkSize + 17, 4 * pad.ChunkSize} {
		for _, pq := range []bool{false, true} {
			plain := randBytes(n)
			p := seal(t, plain, pad.SealOptions{PQ: pq})
			for _, k := range []*party.Key{alice, bob} {
				got, h, err := open(p, k)
				if err != nil {
					t.Fatalf("size %d pq %v: open: %v", n, pq, err)
				}
				if !bytes.Equal(got, plain) {
					t.Fatalf("size %d pq %v: plaintext differs", n, pq)
				}
				if h.Size != int64(n) || !h.MACVerified || h.Derived() || !h.Signer.Equal(alice.Identity()) {
					t.Fatalf("size %d: header %+v", n, h)
				}
				if want := int64(len(p) - len(h.Bytes())); h.PayloadSize() != want {
					t.Fatalf("size %d: PayloadSize %d, want %d", n, h.PayloadSize(), want)
				}
			}
		}
	}
}

func TestHeaderFields(t *testing.T) {
	keys(t)
	p := seal(t, []byte("hello"), pad.SealOptions{ContentType: "text/csv; charset=utf-8", PQ: true,
		Recipients: []*party.Identity{bob.Identity(), alice.Identity(), bob.Identity()}})
	h, err := pad.Inspect(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	if h.MACVerified {
		t.Error("Inspect claims to have verified the MAC")
	}
	if h.ContentType != "text/csv; charset=utf-8" || h.PolicyType != testPolicyType || !bytes.Equal(h.Policy, testPolicy) {
		t.Errorf("fields: %+v", h)
	}
	if !h.CreatedAt.Equal(testCreated) || h.Size != 5 {
		t.Errorf("created %v size %d", h.CreatedAt, h.Size)
	}
	if len(h.Wraps) != 2 || !h.IsRecipient(alice.Identity().ID()) || !h.IsRecipient(bob.Identity().ID()) || h.IsRecipient(carol.Identity().ID()) {
		t.Errorf("recipients: %v", h.Recipients())
	}
	for _, w := range h.Wraps {
		if w.KEM != party.KEMXWing {
			t.Errorf("kem %#x, want X-Wing", w.KEM)
		}
	}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"signature_verified":true`, `"mac_verified":false`, `"kem":"ML-KEM-768+X25519"`, `"derived":false`, h.ID.String(), `"policy":"permit(`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("json lacks %s: %s", want, j)
		}
	}
}

func TestDerivedPad(t *testing.T) {
	keys(t)
	parent := seal(t, []byte("parent"), pad.SealOptions{})
	ph, err := pad.Inspect(bytes.NewReader(parent))
	if err != nil {
		t.Fatal(err)
	}
	dk := pad.NewDataKey()
	refs := []pad.ParentRef{{ID: pad.NewID()}, {ID: ph.ID, PolicyDigest: ph.PolicyDigest()}}
	p := seal(t, []byte("model"), pad.SealOptions{Signer: clusterKey, DataKey: dk, Parents: refs})
	h, r, err := pad.OpenWithKey(bytes.NewReader(p), dk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "model" {
		t.Fatalf("read %q, %v", got, err)
	}
	if !h.Derived() || !h.Signer.Equal(clusterKey.Identity()) || len(h.Wraps) != 0 || len(h.Parents) != 2 {
		t.Fatalf("derived header: %+v", h)
	}
	// Parents are stored sorted by id.
	if bytes.Compare(h.Parents[0].ID[:], h.Parents[1].ID[:]) >= 0 {
		t.Error("parents not sorted")
	}
	_, _, err = pad.Open(bytes.NewReader(p), alice)
	var nr *pad.NotRecipientError
	if !errors.Is(err, pad.ErrNotRecipient) || !errors.As(err, &nr) || !strings.Contains(err.Error(), "cluster") {
		t.Fatalf("open derived with a party key: %v", err)
	}
	if _, _, err := pad.OpenWithKey(bytes.NewReader(p), pad.NewDataKey()); !errors.Is(err, pad.ErrTampered) {
		t.Fatalf("open with the wrong data key: %v", err)
	}
}

func TestNotRecipient(t *testing.T) {
	keys(t)
	p := seal(t, []byte("x"), pad.SealOptions{Recipients: []*party.Identity{bob.Identity()}})
	_, _, err := open(p, carol)
	if !errors.Is(err, pad.ErrNotRecipient) || errors.Is(err, pad.ErrTampered) {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), carol.Identity().ID().String()) {
		t.Errorf("error does not name the opener: %v", err)
	}
}

func TestSealRefuses(t *testing.T) {
	keys(t)
	many := make([]*party.Identity, pad.MaxWraps+1)
	for i := range many {
		k, _ := party.Generate()
		many[i] = k.Identity()
	}
	id := pad.NewID()
	cases := []struct {
		name string
		opts pad.SealOptions
		want error
	}{
		{"no signer", pad.SealOptions{Recipients: []*party.Identity{bob.Identity()}, Policy: testPolicy, PolicyType: "x"}, pad.ErrInvalidOptions},
		{"empty policy", pad.SealOptions{Signer: alice, Recipients: []*party.Identity{bob.Identity()}, PolicyType: "x"}, pad.ErrInvalidOptions},
		{"huge policy", pad.SealOptions{Signer: alice, Recipients: []*party.Identity{bob.Identity()}, Policy: make([]byte, pad.MaxPolicySize+1), PolicyType: "x"}, pad.ErrTooLarge},
		{"no policy type", pad.SealOptions{Signer: alice, Recipients: []*party.Identity{bob.Identity()}, Policy: testPolicy}, pad.ErrInvalidOptions},
		{"bad content type", pad.SealOptions{Signer: alice, Recipients: []*party.Identity{bob.Identity()}, Policy: testPolicy, PolicyType: "x", ContentType: "a\nb"}, pad.ErrInvalidOptions},
		{"nobody can open", pad.SealOptions{Signer: alice, Policy: testPolicy, PolicyType: "x"}, pad.ErrInvalidOptions},
		{"too many recipients", pad.SealOptions{Signer: alice, Recipients: many, Policy: testPolicy, PolicyType: "x"}, pad.ErrTooLarge},
		{"repeated parent", pad.SealOptions{Signer: alice, DataKey: pad.NewDataKey(), Parents: []pad.ParentRef{{ID: id}, {ID: id}}, Policy: testPolicy, PolicyType: "x"}, pad.ErrInvalidOptions},
		{"negative size", pad.SealOptions{Signer: alice, Recipients: []*party.Identity{bob.Identity()}, Policy: testPolicy, PolicyType: "x", Size: -1}, pad.ErrInvalidOptions},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := pad.Seal(io.Discard, bytes.NewReader(nil), c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if errors.Is(err, pad.ErrTampered) {
				t.Fatalf("a seal error claims tampering: %v", err)
			}
		})
	}
}

func TestSealSizeMismatch(t *testing.T) {
	keys(t)
	base := pad.SealOptions{Signer: alice, Recipients: []*party.Identity{bob.Identity()}, Policy: testPolicy, PolicyType: "x"}
	for _, c := range []struct{ declared, actual int }{{10, 9}, {10, 11}, {0, 1}, {pad.ChunkSize + 1, pad.ChunkSize}, {pad.ChunkSize, pad.ChunkSize + 1}} {
		o := base
		o.Size = int64(c.declared)
		if _, err := pad.Seal(io.Discard, bytes.NewReader(make([]byte, c.actual)), o); !errors.Is(err, pad.ErrSizeMismatch) {
			t.Errorf("declared %d, given %d: %v", c.declared, c.actual, err)
		}
	}
}

func TestID(t *testing.T) {
	id := pad.NewID()
	s := id.String()
	if !strings.HasPrefix(s, pad.IDPrefix) || len(s) != len(pad.IDPrefix)+32 {
		t.Fatalf("id string %q", s)
	}
	got, err := pad.ParseID("  " + s + "\n")
	if err != nil || got != id {
		t.Fatalf("ParseID: %v", err)
	}
	typo := []byte(s)
	typo[12] ^= 'a' ^ 'b'
	if typo[12] == s[12] {
		typo[12] = 'c'
	}
	for _, bad := range []string{string(typo), s[:len(s)-1], s + "a", "pad_" + s[8:], "", strings.ToUpper(s)} {
		if _, err := pad.ParseID(bad); !errors.Is(err, pad.ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v", bad, err)
		}
	}
	var back pad.ID
	if err := back.UnmarshalText([]byte(s)); err != nil || back != id {
		t.Fatal("text round trip")
	}
}

func TestDataKeyRedacted(t *testing.T) {
	k := pad.NewDataKey()
	if s := k.String(); strings.Contains(s, "0x") || !strings.Contains(s, "redacted") {
		t.Fatal(s)
	}
	if v := k.LogValue().String(); !strings.Contains(v, "redacted") {
		t.Fatal(v)
	}
}

func TestReaderReadAfterError(t *testing.T) {
	keys(t)
	p := seal(t, randBytes(2*pad.ChunkSize), pad.SealOptions{})
	p[len(p)-1] ^= 1
	_, r, err := pad.Open(bytes.NewReader(p), alice)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	var total int
	for {
		n, err := r.Read(buf)
		total += n
		if err != nil {
			if !errors.Is(err, pad.ErrTampered) {
				t.Fatalf("got %v", err)
			}
			break
		}
	}
	if total != pad.ChunkSize {
		t.Fatalf("released %d bytes, want only the first chunk", total)
	}
	if _, err := r.Read(buf); !errors.Is(err, pad.ErrTampered) {
		t.Fatalf("error is not sticky: %v", err)
	}
}

func TestOpenWithoutKey(t *testing.T) {
	keys(t)
	p := seal(t, []byte("x"), pad.SealOptions{})
	if _, _, err := pad.Open(bytes.NewReader(p), nil); !errors.Is(err, pad.ErrInvalidOptions) {
		t.Fatal(err)
	}
	if _, _, err := pad.OpenWithKey(bytes.NewReader(p), nil); !errors.Is(err, pad.ErrInvalidOptions) {
		t.Fatal(err)
	}
}
