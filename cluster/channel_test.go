package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve runs n's attestation handler behind TLS with n's own key.
func serve(t *testing.T, n *Node) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(AttestationPath, n.Handler())
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	srv := httptest.NewUnstartedServer(mux)
	cfg, err := n.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(cfg *tls.Config, url string) (string, error) {
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestAttestedChannel(t *testing.T) {
	n, _ := Init(simConfig(t, goodMeasurement))
	srv := serve(t, n)
	pins := NewPinStore(filepath.Join(t.TempDir(), "styx", "pins.json"))
	c := &Client{Reference: devRef(), Pins: pins}
	a, err := c.Attest(context.Background(), srv.URL+"/some/path")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Cluster.Equal(n.Identity()) || a.Pin != KeyPin(n.TLSPublicKey()) || !a.Claims.Simulated {
		t.Fatalf("attested %+v", a)
	}
	if body, err := get(a.TLSConfig(), srv.URL+"/hello"); err != nil || body != "hello" {
		t.Fatalf("pinned request: %q %v", body, err)
	}
	p, ok, err := pins.Get(srv.URL)
	if err != nil || !ok || p.Cluster != n.Identity().ID() || !p.Simulated {
		t.Fatalf("pin %+v %v %v", p, ok, err)
	}
	fi, _ := os.Stat(filepath.Join(filepath.Dir(pinsPath(pins)), "pins.json"))
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("pin file mode %v", fi.Mode())
	}

	// Another node at the same address: the pinned configuration refuses it.
	impostor, _ := Init(simConfig(t, goodMeasurement))
	srv2 := serve(t, impostor)
	cfg, err := pins.TLSConfig(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(cfg, srv2.URL+"/hello")
	if err == nil || !strings.Contains(err.Error(), "server TLS key does not match the attested key") {
		t.Fatalf("impostor: %v", err)
	}
	// Re-attesting a server pinned to another cluster is refused.
	a2, err := (&Client{Reference: devRef()}).Attest(context.Background(), srv2.URL)
	if err != nil {
		t.Fatal(err)
	}
	a2.Server = a.Server
	if err := pins.Record(a2); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("cluster change: %v", err)
	}
	if _, err := pins.TLSConfig("https://unknown.example"); err == nil || !strings.Contains(err.Error(), "styx attest") {
		t.Fatalf("unpinned server: %v", err)
	}
}

func pinsPath(s *PinStore) string { return s.path }

// TestAttestRelayedBundle: a man in the middle relays a genuine node's bundle over its own TLS
// key. The bundle verifies, but the channel is not the attested one: hard failure.
func TestAttestRelayedBundle(t *testing.T) {
	genuine, _ := Init(simConfig(t, goodMeasurement))
	mitm, _ := Init(simConfig(t, goodMeasurement))
	mux := http.NewServeMux()
	mux.Handle(AttestationPath, genuine.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS, _ = mitm.TLSConfig()
	srv.StartTLS()
	defer srv.Close()
	_, err := (&Client{Reference: devRef()}).Attest(context.Background(), srv.URL)
	var pe *PinError
	if !errors.As(err, &pe) || !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("got %v", err)
	}
}

func TestAttestRefusals(t *testing.T) {
	n, _ := Init(simConfig(t, goodMeasurement))
	srv := serve(t, n)
	strict := devRef()
	strict.AllowSimulated = false
	if _, err := (&Client{Reference: strict}).Attest(context.Background(), srv.URL); err == nil || !strings.Contains(err.Error(), "simulated evidence not accepted") {
		t.Fatalf("strict: %v", err)
	}
	if _, err := (&Client{Reference: devRef()}).Attest(context.Background(), strings.Replace(srv.URL, "https", "http", 1)); err == nil {
		t.Fatal("http accepted")
	}
}

func TestHandler(t *testing.T) {
	n, _ := Init(simConfig(t, goodMeasurement))
	h := n.Handler()
	for _, tc := range []struct {
		method, query string
		code          int
	}{
		{"GET", "nonce=" + strings.Repeat("ab", 32), 200},
		{"POST", "nonce=" + strings.Repeat("ab", 32), 405},
		{"GET", "", 400},
		{"GET", "nonce=abcd", 400},
		{"GET", "nonce=" + strings.Repeat("zz", 32), 400},
		{"GET", "nonce=" + strings.Repeat("ab", 32) + "&nonce=" + strings.Repeat("ab", 32), 400},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, AttestationPath+"?"+tc.query, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.query, rec.Code, tc.code)
		}
		if tc.code == 200 {
			if _, err := ParseBundle(rec.Body.Bytes()); err != nil {
				t.Error(err)
			}
		}
	}
}

func TestPinStoreFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	s := NewPinStore(path)
	if _, ok, err := s.Get("https://a.example"); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	os.WriteFile(path, []byte(`{"https://a.example":{"cluster":"x"}}`), 0o600)
	if _, _, err := s.Get("https://a.example"); err == nil {
		t.Error("corrupt pin accepted")
	}
	os.WriteFile(path, []byte(`{"https://a.example":{"unknown":1}}`), 0o600)
	if _, _, err := s.Get("https://a.example"); err == nil {
		t.Error("unknown field accepted")
	}
	if _, _, err := s.Get("http://a.example"); err == nil {
		t.Error("http url accepted")
	}
	for in, want := range map[string]string{
		"https://a.example/x?y":  "https://a.example",
		"https://a.example:8443": "https://a.example:8443",
	} {
		if got, err := CanonicalServer(in); err != nil || got != want {
			t.Errorf("%s: %q %v", in, got, err)
		}
	}
	for _, in := range []string{"a.example", "https://user@a.example", "ftp://a.example", "https://"} {
		if _, err := CanonicalServer(in); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}
