package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// handlerNode is a Server without TLS, on a fixed clock, called through its Handler directly.
type handlerNode struct {
	svc *memService
	srv *Server
}

func newHandlerNode(t testing.TB, mod func(*Config)) *handlerNode {
	t.Helper()
	n := &handlerNode{svc: newMemService()}
	cfg := Config{Service: n.svc, Audience: "node-a", Now: func() time.Time { return testNow },
		Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.srv = srv
	return n
}

func (n *handlerNode) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	n.srv.Handler().ServeHTTP(w, r)
	return w
}

// errorOf decodes the JSON error body of a response.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) *Error {
	t.Helper()
	var e Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("status %d, body %q is not a JSON error: %v", w.Code, w.Body, err)
	}
	return &e
}

func TestSignedRequestAccepted(t *testing.T) {
	n := newHandlerNode(t, nil)
	w := n.do(signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/pads?limit=5", nil, testNow))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

// TestTamperedRequestRefused changes one signed thing after signing and expects 401.
func TestTamperedRequestRefused(t *testing.T) {
	key := testKey(t, 0)
	tests := []struct {
		name   string
		tamper func(r *http.Request)
		want   string
	}{
		{"method", func(r *http.Request) { r.Method = "POST"; r.URL.Path += "/release"; r.RequestURI += "/release" }, "bad request signature"},
		{"path", func(r *http.Request) { r.URL.Path, r.RequestURI = "/v1/pads/pad-2", "/v1/pads/pad-2" }, "bad request signature"},
		{"query", func(r *http.Request) { r.RequestURI = "/v1/pads/pad-1?x=1" }, "bad request signature"},
		{"date", func(r *http.Request) { r.Header.Set(HeaderDate, "2026-11-24T12:00:01Z") }, "bad request signature"},
		{"nonce", func(r *http.Request) { r.Header.Set(HeaderNonce, "AAAAAAAAAAAAAAAAAAAAAA") }, "bad request signature"},
		{"content hash", func(r *http.Request) { r.Header.Set(HeaderContentSHA256, sha256Hex([]byte("x"))) }, "bad request signature"},
		{"identity", func(r *http.Request) { r.Header.Set(HeaderIdentity, testKey(t, 1).Identity().String()) }, "bad request signature"},
		{"audience", func(r *http.Request) { r.Header.Set(HeaderAudience, "node-b") }, "signed for another server"},
		{"signature bit", func(r *http.Request) {
			s := []byte(r.Header.Get(HeaderSignature))
			s[3] = map[bool]byte{true: 'B', false: 'A'}[s[3] == 'A'] // stays base64url
			r.Header.Set(HeaderSignature, string(s))
		}, "bad request signature"},
		{"unsigned", func(r *http.Request) {
			for _, h := range []string{HeaderIdentity, HeaderDate, HeaderNonce, HeaderContentSHA256, HeaderAudience, HeaderSignature} {
				r.Header.Del(h)
			}
		}, "unsigned or malformed"},
		{"no signature", func(r *http.Request) { r.Header.Del(HeaderSignature) }, "want exactly one"},
		{"two signatures", func(r *http.Request) { r.Header.Add(HeaderSignature, r.Header.Get(HeaderSignature)) }, "want exactly one"},
		{"non-canonical date", func(r *http.Request) { r.Header.Set(HeaderDate, "2026-11-24T12:00:00+00:00") }, "Styx-Date"},
		{"impossible date", func(r *http.Request) { r.Header.Set(HeaderDate, "2026-02-30T12:00:00Z") }, "want 2006"},
		{"upper-case hash", func(r *http.Request) {
			r.Header.Set(HeaderContentSHA256, strings.ToUpper(r.Header.Get(HeaderContentSHA256)))
		}, "lowercase hex"},
		{"short id", func(r *http.Request) { r.Header.Set(HeaderIdentity, key.Identity().ID().String()) }, "short party id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newHandlerNode(t, nil)
			r := signedRequest(t, key, "node-a", "GET", "/v1/pads/pad-1", nil, testNow)
			tt.tamper(r)
			w := n.do(r)
			if w.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", w.Code, w.Body)
			}
			if e := errorOf(t, w); e.Code != CodeUnauthenticated || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("error %+v, want code unauthenticated and %q", e, tt.want)
			}
			if w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestTamperedBodyRefused(t *testing.T) {
	n := newHandlerNode(t, nil)
	body := []byte(`{"program":"` + strings.Repeat("a", 64) + `","inputs":{"x":"pad-1"},"purpose":"research","outputs":[]}`)
	r := signedRequest(t, testKey(t, 0), "node-a", "POST", "/v1/jobs/explain", body, testNow)
	r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), "research", "marketin", 1)))
	w := n.do(r)
	if e := errorOf(t, w); w.Code != 400 || !errors.Is(e, ErrBadRequest) || !strings.Contains(e.Message, "does not match its signed SHA-256") {
		t.Fatalf("status %d, error %+v", w.Code, e)
	}
}

func TestReplayRefused(t *testing.T) {
	n := newHandlerNode(t, nil)
	r := signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/pads", nil, testNow)
	replay := r.Clone(r.Context())
	if w := n.do(r); w.Code != 200 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	w := n.do(replay)
	if e := errorOf(t, w); w.Code != 401 || !strings.Contains(e.Message, "replayed") {
		t.Fatalf("replay: %d %+v", w.Code, e)
	}
}

// TestReplayAfterWindowRefusedByDate: once the nonce is forgotten, the date refuses the replay.
func TestReplayAfterWindowRefusedByDate(t *testing.T) {
	now := testNow
	n := newHandlerNode(t, func(c *Config) { c.Now = func() time.Time { return now } })
	r := signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/pads", nil, testNow)
	replay := r.Clone(r.Context())
	if w := n.do(r); w.Code != 200 {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	now = testNow.Add(DefaultMaxSkew + time.Second)
	// Any request prunes the cache; then the replay must fail on its date.
	n.do(signedRequest(t, testKey(t, 1), "node-a", "GET", "/v1/pads", nil, now))
	if got := n.srv.verify.nonces.len(); got != 1 {
		t.Fatalf("nonce cache holds %d entries after expiry, want 1", got)
	}
	w := n.do(replay)
	if e := errorOf(t, w); w.Code != 401 || !strings.Contains(e.Message, "more than 2m0s from the server's clock") {
		t.Fatalf("late replay: %d %+v", w.Code, e)
	}
}

func TestClockSkew(t *testing.T) {
	for _, tt := range []struct {
		offset time.Duration
		ok     bool
	}{
		{-DefaultMaxSkew, true}, {DefaultMaxSkew, true},
		{-DefaultMaxSkew - time.Second, false}, {DefaultMaxSkew + time.Second, false},
		{-24 * time.Hour, false},
	} {
		n := newHandlerNode(t, nil)
		w := n.do(signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/pads", nil, testNow.Add(tt.offset)))
		if got := w.Code == 200; got != tt.ok {
			t.Errorf("offset %v: status %d, want ok=%v: %s", tt.offset, w.Code, tt.ok, w.Body)
		}
	}
}

// TestNonceCacheFull: a full cache forgets its oldest nonces and refuses every request dated as
// old as those, so nothing it forgot can be replayed, while freshly signed requests still pass (a
// flood from fresh keys cannot lock honest callers out).
func TestNonceCacheFull(t *testing.T) {
	n := newHandlerNode(t, func(c *Config) { c.MaxNonces = 2 })
	var sent []*http.Request
	for i := range 3 { // the third evicts the first
		r := signedRequest(t, testKey(t, i), "node-a", "GET", "/v1/pads", nil, testNow.Add(time.Duration(i-3)*time.Second))
		if w := n.do(r.Clone(r.Context())); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
		sent = append(sent, r)
	}
	// The first nonce was forgotten: its replay must be refused by date, as retryable.
	w := n.do(sent[0].Clone(sent[0].Context()))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || errorOf(t, w).Code != CodeUnavailable {
		t.Fatalf("replay of a forgotten nonce: %d %s", w.Code, w.Body)
	}
	// Remembered nonces are still replays.
	if w := n.do(sent[2].Clone(sent[2].Context())); w.Code != 401 {
		t.Fatalf("replay of a remembered nonce: %d %s", w.Code, w.Body)
	}
	// A flood signed a second earlier fills the cache (some of it is refused once the floor reaches
	// its date), but does not lock out the next honest request, signed at the current time.
	for i := 3; i < 10; i++ {
		w := n.do(signedRequest(t, testKey(t, i%3), "node-a", "GET", "/v1/pads", nil, testNow.Add(-time.Second)))
		if w.Code != 200 && w.Code != 503 {
			t.Fatalf("flood request %d: %d %s", i, w.Code, w.Body)
		}
	}
	if w := n.do(signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/pads", nil, testNow)); w.Code != 200 {
		t.Fatalf("honest request after the flood: %d %s", w.Code, w.Body)
	}
}

// TestBadSignatureDoesNotBurnNonce: a forged request must not use up the real caller's nonce.
func TestBadSignatureDoesNotBurnNonce(t *testing.T) {
	n := newHandlerNode(t, nil)
	r := signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/pads", nil, testNow)
	forged := r.Clone(r.Context())
	forged.Header.Set(HeaderSignature, strings.Repeat("A", 86))
	if w := n.do(forged); w.Code != 401 {
		t.Fatalf("forged: %d", w.Code)
	}
	if w := n.do(r); w.Code != 200 {
		t.Fatalf("genuine after forged: %d %s", w.Code, w.Body)
	}
}

func TestCanonicalString(t *testing.T) {
	key := testKey(t, 0)
	s := &SignedRequest{Method: "POST", RequestURI: "/v1/jobs?x=1", Audience: "node-a", Date: testNow,
		Nonce: "AAAAAAAAAAAAAAAAAAAAAA", ContentSHA256: EmptySHA256, Identity: key.Identity()}
	want := "styx-api-request-v1\nPOST\n/v1/jobs?x=1\nnode-a\n2026-11-24T12:00:00Z\nAAAAAAAAAAAAAAAAAAAAAA\n" +
		EmptySHA256 + "\n" + key.Identity().ID().String() + "\n"
	if got := string(s.Canonical()); got != want {
		t.Fatalf("canonical:\n%s\nwant:\n%s", got, want)
	}
}

func TestRequestSignatureIsDomainSeparated(t *testing.T) {
	key := testKey(t, 0)
	r := signedRequest(t, key, "node-a", "GET", "/v1/pads", nil, testNow)
	s, err := parseSignedRequest(r.Method, r.RequestURI, r.Header)
	if err != nil {
		t.Fatal(err)
	}
	if key.Identity().Verify(RevocationDomain, s.Canonical(), s.Signature) {
		t.Fatal("a request signature verifies as a revocation")
	}
}
