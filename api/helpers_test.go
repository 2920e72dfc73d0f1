package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

var (
	keysOnce sync.Once
	keys     [3]*party.Key
)

// testKey returns one of three party keys, generated once per test binary.
func testKey(t testing.TB, i int) *party.Key {
	keysOnce.Do(func() {
		for j := range keys {
			k, err := party.Generate()
			if err != nil {
				panic(err)
			}
			keys[j] = k
		}
	})
	return keys[i]
}

// selfSigned returns a TLS certificate for 127.0.0.1.
func selfSigned(t testing.TB) tls.Certificate {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "styx test node"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
}

// testNode is an API server on real TLS with a memService behind it.
type testNode struct {
	svc *memService
	srv *Server
	ts  *httptest.Server
	log *lockedWriter
}

func newTestNode(t testing.TB, cfg Config) *testNode {
	t.Helper()
	cert := selfSigned(t)
	n := &testNode{svc: newMemService(), log: &lockedWriter{w: &strings.Builder{}}}
	if cfg.Service == nil {
		cfg.Service = n.svc
	}
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	cfg.Logger = slog.New(slog.NewTextHandler(n.log, nil))
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	n.ts = httptest.NewUnstartedServer(srv.Handler())
	n.ts.TLS = cfg.TLS
	n.ts.StartTLS()
	t.Cleanup(n.ts.Close)
	return n
}

// client returns a Client for party key i, trusting only the node's certificate.
func (n *testNode) client(t testing.TB, i int) *Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(n.ts.Certificate())
	c, err := NewClient(ClientConfig{BaseURL: n.ts.URL, Key: testKey(t, i), TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (n *testNode) logs() string {
	n.log.mu.Lock()
	defer n.log.mu.Unlock()
	return n.log.w.(*strings.Builder).String()
}

// signedRecorderRequest builds a request signed by key for audience, ready for a handler.
func signedRequest(t testing.TB, key *party.Key, audience, method, target string, body []byte, now time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(string(body)))
	SignRequest(r, key, audience, sha256Hex(body), now)
	return r
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
