package cluster

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/sim"
)

var (
	goodMeasurement  = [32]byte{0x60, 0x0d}
	otherMeasurement = [32]byte{0xba, 0xd0}
)

// devRef accepts simulated nodes running goodMeasurement.
func devRef() *tee.ReferenceValues {
	return &tee.ReferenceValues{AllowSimulated: true, TEE: map[tee.Type]*tee.TypeReference{
		tee.Sim: {Measurements: []tee.Measurement{{"measurement": "600d" + strings.Repeat("00", 30)}}},
	}}
}

func simConfig(t *testing.T, m [32]byte) Config {
	t.Helper()
	dir := t.TempDir()
	s, err := sim.NewSealer(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	return Config{Dir: filepath.Join(dir, "node"), Attester: sim.New(m, false), Sealer: s, Reference: devRef()}
}

func TestInitOpen(t *testing.T) {
	cfg := simConfig(t, goodMeasurement)
	if _, err := Open(cfg); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("open before init: %v", err)
	}
	n, err := Init(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(cfg); err == nil {
		t.Fatal("second init accepted")
	}
	again, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Identity().Equal(n.Identity()) || !bytes.Equal(again.TLSPublicKey(), n.TLSPublicKey()) {
		t.Fatal("reopened node has other keys")
	}
	if again.StoreKey() != n.StoreKey() || n.StoreKey() == n.DeriveKey("other") {
		t.Fatal("store key not stable or not label-separated")
	}
	// Nothing in the data directory is plaintext.
	sealed, _ := os.ReadFile(filepath.Join(cfg.Dir, ClusterKeyFile))
	if bytes.Contains(sealed, []byte("STYX-PARTY-KEY")) || bytes.Contains(sealed, []byte("styx1")) {
		t.Fatal("cluster key stored in the clear")
	}
	// Another sealing key cannot open it.
	other := simConfig(t, goodMeasurement)
	other.Dir = cfg.Dir
	if _, err := Open(other); !errors.Is(err, tee.ErrUnseal) {
		t.Fatalf("open with another sealer: %v", err)
	}
	if s := n.LogValue().String(); strings.Contains(s, "STYX-PARTY-KEY") {
		t.Fatal("log value leaks the key")
	}
}

func TestBundleVerify(t *testing.T) {
	n, err := Init(simConfig(t, goodMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	nonce := NewNonce()
	b, err := n.Bundle(nonce)
	if err != nil {
		t.Fatal(err)
	}
	id, c, err := b.Verify(devRef(), nil, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Equal(n.Identity()) || !c.Simulated {
		t.Fatalf("identity %v claims %+v", id, c)
	}
	parsed, err := ParseBundle(b.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := parsed.Verify(devRef(), nil, nonce); err != nil {
		t.Fatal(err)
	}

	other, _ := Init(simConfig(t, goodMeasurement))
	strict := devRef()
	strict.AllowSimulated = false
	bad := otherMeasurementBundle(t, nonce)
	for _, tc := range []struct {
		name  string
		b     func() *Bundle
		ref   *tee.ReferenceValues
		nonce []byte
		want  error
		msg   string
	}{
		{"simulated in strict mode", func() *Bundle { return b }, strict, nonce, tee.ErrSimulated, "simulator"},
		{"stale nonce", func() *Bundle { return b }, devRef(), NewNonce(), ErrStaleNonce, "another nonce"},
		{"wrong measurement", func() *Bundle { return bad }, devRef(), nonce, tee.ErrMeasurement, "not listed"},
		{"tls key not bound", func() *Bundle { c := *b; c.TLSKey = other.TLSPublicKey(); return &c }, devRef(), nonce, tee.ErrReportData, "evidence binds"},
		{"cluster key not bound", func() *Bundle { c := *b; c.Cluster = other.Identity().String(); return &c }, devRef(), nonce, tee.ErrReportData, "evidence binds"},
		{"nonce swapped with its evidence", func() *Bundle { c := *b; c.Nonce = NewNonce(); return &c }, devRef(), nil, tee.ErrReportData, ""},
		{"claims edited", func() *Bundle {
			c := *b
			cl := *b.Claims
			cl.Simulated = false
			c.Claims = &cl
			return &c
		}, devRef(), nonce, tee.ErrMalformed, "claims in the bundle differ"},
		{"evidence of another type", func() *Bundle { c := *b; c.Evidence.Type = tee.TDX; return &c }, devRef(), nonce, tee.ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.b().Verify(tc.ref, nil, tc.nonce)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v saying %q", err, tc.want, tc.msg)
			}
		})
	}
}

func otherMeasurementBundle(t *testing.T, nonce []byte) *Bundle {
	n, err := Init(simConfig(t, otherMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Bundle(nonce)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyBundleFile(t *testing.T) {
	n, _ := Init(simConfig(t, goodMeasurement))
	b, _ := n.Bundle(NewNonce())
	path := filepath.Join(t.TempDir(), "cluster.bundle")
	os.WriteFile(path, b.Marshal(), 0o644)
	id, c, err := VerifyBundleFile(path, devRef())
	if err != nil || !id.Equal(n.Identity()) || !c.Simulated {
		t.Fatalf("%v %v %v", id, c, err)
	}
	strict := devRef()
	strict.AllowSimulated = false
	if _, _, err := VerifyBundleFile(path, strict); !errors.Is(err, tee.ErrSimulated) {
		t.Fatalf("strict: %v", err)
	}
	os.WriteFile(path, append(b.Marshal(), ' '), 0o644)
	if _, _, err := VerifyBundleFile(path, devRef()); !errors.Is(err, tee.ErrMalformed) {
		t.Fatalf("non-canonical: %v", err)
	}
}

func TestJoin(t *testing.T) {
	a, err := Init(simConfig(t, goodMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	// An owner seals a Pad to the cluster identity, knowing only what the bundle attested.
	var padBuf bytes.Buffer
	owner, _ := party.Generate()
	secret := []byte("patient records")
	if _, err := pad.Seal(&padBuf, bytes.NewReader(secret), pad.SealOptions{
		Signer: owner, Recipients: []*party.Identity{a.Identity()}, PQ: true,
		Policy: []byte(`permit(principal, action, resource);`), PolicyType: "application/cedar", Size: int64(len(secret)),
	}); err != nil {
		t.Fatal(err)
	}

	nonce := NewNonce()
	j, err := NewJoiner(simConfig(t, goodMeasurement), nonce)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Admit(j.Request(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	b, err := j.Complete(resp)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Identity().Equal(a.Identity()) || b.StoreKey() != a.StoreKey() {
		t.Fatal("joined node holds another cluster key")
	}
	if bytes.Equal(b.TLSPublicKey(), a.TLSPublicKey()) {
		t.Fatal("joined node reuses the TLS key")
	}
	_, r, err := pad.Open(bytes.NewReader(padBuf.Bytes()), b.Key())
	if err != nil {
		t.Fatalf("admitted node cannot open a Pad sealed to the cluster: %v", err)
	}
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil || got.String() != string(secret) {
		t.Fatalf("payload %q, %v", got.String(), err)
	}
	// The joined node keeps the key across restarts.
	reopened, err := Open(b.cfg)
	if err != nil || !reopened.Identity().Equal(a.Identity()) {
		t.Fatalf("reopen joined node: %v", err)
	}
}

func TestJoinRefusals(t *testing.T) {
	a, _ := Init(simConfig(t, goodMeasurement))
	nonce := NewNonce()

	t.Run("other measurement", func(t *testing.T) {
		j, _ := NewJoiner(simConfig(t, otherMeasurement), nonce)
		_, err := a.Admit(j.Request(), nonce)
		if !errors.Is(err, tee.ErrMeasurement) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("stale nonce", func(t *testing.T) {
		j, _ := NewJoiner(simConfig(t, goodMeasurement), NewNonce())
		if _, err := a.Admit(j.Request(), nonce); !errors.Is(err, ErrStaleNonce) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("join key swapped", func(t *testing.T) {
		j, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
		evil, _ := party.Generate()
		req := *j.Request()
		req.Identity = evil.Identity().String()
		if _, err := a.Admit(&req, nonce); !errors.Is(err, tee.ErrReportData) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("admitting node not accepted by joiner", func(t *testing.T) {
		cfg := simConfig(t, goodMeasurement)
		cfg.Reference = &tee.ReferenceValues{AllowSimulated: true, TEE: map[tee.Type]*tee.TypeReference{
			tee.Sim: {Measurements: []tee.Measurement{{"measurement": strings.Repeat("77", 32)}}}}}
		// The joiner runs the pinned measurement... and so must the admitting node.
		var m [32]byte
		for i := range m {
			m[i] = 0x77
		}
		cfg.Attester = sim.New(m, false)
		j, _ := NewJoiner(cfg, nonce)
		open := &tee.ReferenceValues{AllowSimulated: true}
		a2cfg := a.cfg
		a2cfg.Reference = open
		a2 := &Node{cfg: a2cfg, key: a.key, tlsKey: a.tlsKey, tlsSPKI: a.tlsSPKI}
		resp, err := a2.Admit(j.Request(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Complete(resp); !errors.Is(err, tee.ErrMeasurement) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrap tampered", func(t *testing.T) {
		j, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
		resp, err := a.Admit(j.Request(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		resp.Wrap[len(resp.Wrap)-1] ^= 1
		if _, err := j.Complete(resp); err == nil || !strings.Contains(err.Error(), "unwrap") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrap for another joiner", func(t *testing.T) {
		j1, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
		j2, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
		resp, err := a.Admit(j1.Request(), nonce)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j2.Complete(resp); err == nil {
			t.Fatal("joiner opened a wrap made for another")
		}
	})
}

func TestLocalTEESim(t *testing.T) {
	dir := t.TempDir()
	a, s, err := LocalTEE(tee.Sim, dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Init(Config{Dir: dir, Attester: a, Sealer: s})
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Bundle(NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := sim.ExecutableMeasurement()
	if b.Claims.Measurement != hex.EncodeToString(m[:]) || !b.Claims.Simulated {
		t.Fatalf("claims %+v", b.Claims)
	}
	if _, _, err := LocalTEE(tee.SGX, dir); !errors.Is(err, tee.ErrUnsupported) {
		t.Fatalf("sgx: %v", err)
	}
	if _, _, err := LocalTEE("tpm", dir); err == nil {
		t.Fatal("unknown type accepted")
	}
}
