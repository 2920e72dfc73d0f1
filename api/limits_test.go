package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// TestStreamedBodyHashMismatch: a streamed upload whose bytes differ from the signed hash
// reaches the service as a read error at EOF, nothing is stored, and the client gets 400.
func TestStreamedBodyHashMismatch(t *testing.T) {
	n := newHandlerNode(t, nil)
	r := signedRequest(t, testKey(t, 0), "node-a", "POST", "/v1/pads", []byte("good pad"), testNow)
	r.Body = io.NopCloser(strings.NewReader("evil pad"))
	w := n.do(r)
	if w.Code != 400 || !strings.Contains(errorOf(t, w).Message, "does not match its signed SHA-256") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if len(n.svc.readErrs) != 1 || !errors.Is(n.svc.readErrs[0], ErrBodyHash) {
		t.Fatalf("service saw %v, want ErrBodyHash", n.svc.readErrs)
	}
	if len(n.svc.pads) != 0 {
		t.Fatal("a Pad whose hash failed was stored")
	}
	// A truncated body fails the same way.
	r = signedRequest(t, testKey(t, 0), "node-a", "POST", "/v1/programs", []byte("module"), testNow)
	r.Body = io.NopCloser(strings.NewReader("modul"))
	if w := n.do(r); w.Code != 400 || len(n.svc.programs) != 0 {
		t.Fatalf("truncated upload: %d, %d programs", w.Code, len(n.svc.programs))
	}
}

// lazyService stops reading an upload before its end.
type lazyService struct{ *memService }

func (l lazyService) UploadPad(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*PadInfo, error) {
	io.ReadFull(body, make([]byte, 2))
	return &PadInfo{ID: "lazy"}, nil
}

func TestServiceMustReadWholeBody(t *testing.T) {
	n := newHandlerNode(t, func(c *Config) { c.Service = lazyService{newMemService()} })
	w := n.do(signedRequest(t, testKey(t, 0), "node-a", "POST", "/v1/pads", []byte("0123456789"), testNow))
	if w.Code != 400 || !strings.Contains(errorOf(t, w).Message, "did not read the whole") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// Stopping exactly at the end (without seeing EOF) is fine: the server checks the hash.
	w = n.do(signedRequest(t, testKey(t, 0), "node-a", "POST", "/v1/pads", []byte("01"), testNow))
	if w.Code != 201 {
		t.Fatalf("exact read: %d %s", w.Code, w.Body)
	}
}

func TestLimits(t *testing.T) {
	n := newHandlerNode(t, func(c *Config) { c.MaxUploadBytes, c.MaxProgramBytes, c.MaxJSONBytes = 100, 10, 64 })
	key := testKey(t, 0)
	big := bytes.Repeat([]byte("x"), 101)

	// Declared too large: refused before the service sees it.
	w := n.do(signedRequest(t, key, "node-a", "POST", "/v1/pads", big, testNow))
	if w.Code != 413 || errorOf(t, w).Code != CodeTooLarge || len(n.svc.readErrs) != 0 {
		t.Fatalf("declared: %d %s", w.Code, w.Body)
	}
	// Chunked (no Content-Length) and too large: the service's read fails, nothing stored.
	r := signedRequest(t, key, "node-a", "POST", "/v1/pads", big, testNow)
	r.ContentLength = -1
	r.Body = io.NopCloser(bytes.NewReader(big))
	if w := n.do(r); w.Code != 413 || len(n.svc.pads) != 0 || !errors.Is(n.svc.readErrs[0], ErrTooLarge) {
		t.Fatalf("chunked: %d %s %v", w.Code, w.Body, n.svc.readErrs)
	}
	// Exactly at the limit is accepted.
	if w := n.do(signedRequest(t, key, "node-a", "POST", "/v1/pads", big[:100], testNow)); w.Code != 201 {
		t.Fatalf("at limit: %d %s", w.Code, w.Body)
	}
	// Programs have their own limit.
	if w := n.do(signedRequest(t, key, "node-a", "POST", "/v1/programs", big[:11], testNow)); w.Code != 413 {
		t.Fatalf("program: %d", w.Code)
	}
	// JSON bodies are small.
	if w := n.do(signedRequest(t, key, "node-a", "POST", "/v1/jobs", big, testNow)); w.Code != 413 {
		t.Fatalf("json: %d", w.Code)
	}
	// A GET with a body is refused.
	if w := n.do(signedRequest(t, key, "node-a", "GET", "/v1/pads", []byte("x"), testNow)); w.Code != 413 {
		t.Fatalf("get with body: %d", w.Code)
	}
}

func TestStrictRequests(t *testing.T) {
	n := newHandlerNode(t, nil)
	key := testKey(t, 0)
	prog := strings.Repeat("a", 64)
	for _, tt := range []struct {
		name, method, target, body, want string
	}{
		{"unknown field", "POST", "/v1/jobs/explain", `{"program":"` + prog + `","inputs":{"a":"p"},"purpose":"x","evil":1}`, "unknown field"},
		{"trailing data", "POST", "/v1/jobs/explain", `{"program":"` + prog + `","inputs":{"a":"p"},"purpose":"x"} {}`, "trailing data"},
		{"bad program", "POST", "/v1/jobs", `{"program":"abc","inputs":{"a":"p"},"purpose":"x"}`, "lowercase hex sha256"},
		{"no inputs", "POST", "/v1/jobs", `{"program":"` + prog + `","inputs":{},"purpose":"x"}`, "0 inputs"},
		{"bad input id", "POST", "/v1/jobs", `{"program":"` + prog + `","inputs":{"a":"../x"},"purpose":"x"}`, "not allowed"},
		{"duplicate output", "POST", "/v1/jobs", `{"program":"` + prog + `","inputs":{"a":"p"},"purpose":"x","outputs":[{"name":"m","kind":"model"},{"name":"m","kind":"model"}]}`, "declared twice"},
		{"bad params", "POST", "/v1/jobs", `{"program":"` + prog + `","inputs":{"a":"p"},"purpose":"x","params":"x"}`, "want a JSON object"},
		{"unknown query", "GET", "/v1/pads?evil=1", "", "unknown query parameter"},
		{"repeated query", "GET", "/v1/audit?pad=a&pad=b", "", "given 2 times"},
		{"bad number", "GET", "/v1/audit?from=-1", "", "non-negative integer"},
		{"bad wait", "GET", "/v1/jobs/j?wait=maybe", "", "true or false"},
		{"bad path id", "GET", "/v1/pads/a%20b", "", "not allowed"},
		{"policy for another pad", "PUT", "/v1/pads/p1/policy", `{"pad":"p2","policy":"eA==","time":"2026-11-24T12:00:00Z","signer":"x","signature":""}`, "not \"p1\""},
		{"query nonce", "POST", "/v1/pads/p1/query", `{"input":"eA==","nonce":"eA=="}`, "want 16 bytes"},
		{"query program", "POST", "/v1/pads/p1/query", `{"program":"x","input":"eA==","nonce":"AAAAAAAAAAAAAAAAAAAAAA=="}`, "lowercase hex sha256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := n.do(signedRequest(t, key, "node-a", tt.method, tt.target, []byte(tt.body), testNow))
			if w.Code != 400 || !strings.Contains(errorOf(t, w).Message, tt.want) {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
}

func TestSignedStatements(t *testing.T) {
	owner, other := testKey(t, 0), testKey(t, 1)
	rv := SignRevocation(owner, "pad-1", "consent withdrawn", testNow)
	if id, err := rv.Verify(); err != nil || !id.Equal(owner.Identity()) {
		t.Fatalf("revocation: %v", err)
	}
	for name, tamper := range map[string]func(*Revocation){
		"pad":    func(r *Revocation) { r.Pad = "pad-2" },
		"reason": func(r *Revocation) { r.Reason = "oops" },
		"time":   func(r *Revocation) { r.Time = r.Time.Add(time.Second) },
		"signer": func(r *Revocation) { r.Signer = other.Identity().String() },
	} {
		c := *rv
		tamper(&c)
		if _, err := c.Verify(); !errors.Is(err, ErrDenied) {
			t.Errorf("revocation with changed %s: %v", name, err)
		}
	}
	u := SignPolicyUpdate(owner, "pad-1", []byte("version: 2\n"), testNow)
	if _, err := u.Verify(); err != nil {
		t.Fatal(err)
	}
	u.Policy = []byte("version: 3\n")
	if _, err := u.Verify(); !errors.Is(err, ErrDenied) {
		t.Fatalf("changed policy: %v", err)
	}
	// A revocation signature is not a policy-update signature.
	u2 := &SignedPolicyUpdate{Pad: "pad-1", Policy: []byte("x"), Time: rv.Time, Signer: rv.Signer, Signature: rv.Signature}
	if _, err := u2.Verify(); !errors.Is(err, ErrDenied) {
		t.Fatalf("cross-domain signature: %v", err)
	}
}

func TestQueryAnswerBinding(t *testing.T) {
	alice, bob := testKey(t, 0), testKey(t, 1)
	q := NewQueryRequest([]byte("in"))
	resp, err := SealAnswer(alice.Identity(), "model-1", q, []byte("out"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := resp.Open(alice, "model-1", q); err != nil || string(b) != "out" {
		t.Fatalf("open: %q %v", b, err)
	}
	if _, err := resp.Open(bob, "model-1", q); err == nil {
		t.Error("another key opened the answer")
	}
	if _, err := resp.Open(alice, "model-2", q); err == nil {
		t.Error("answer opened for another Pad")
	}
	q2 := NewQueryRequest([]byte("in"))
	if _, err := resp.Open(alice, "model-1", q2); err == nil {
		t.Error("answer opened for another request")
	}
	q3 := *q
	q3.Program = strings.Repeat("b", 64)
	if _, err := resp.Open(alice, "model-1", &q3); err == nil {
		t.Error("answer opened for another serving program")
	}
}

// TestConcurrentClients runs many signed requests at once (run with -race): nonces never
// collide and every upload lands.
func TestConcurrentClients(t *testing.T) {
	n := newTestNode(t, Config{})
	ctx := context.Background()
	clients := []*Client{n.client(t, 0), n.client(t, 1), n.client(t, 2)}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 48 {
		wg.Go(func() {
			c := clients[i%3]
			if _, err := c.UploadPad(ctx, strings.NewReader("pad "+string(rune('a'+i)))); err != nil {
				errs <- err
			}
			if _, err := c.ListPads(ctx, &ListPadsRequest{Limit: 5}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := clients[0].ListPads(ctx, nil)
	if err != nil || len(list.Pads) != 48 {
		t.Fatalf("%d pads, %v", len(list.Pads), err)
	}
}

// TestGracefulShutdown: Serve returns once its context ends, after finishing requests in flight.
func TestGracefulShutdown(t *testing.T) {
	n := newHandlerNode(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.srv.Serve(ctx, ln) }()
	c, err := NewClient(ClientConfig{BaseURL: "http://" + ln.Addr().String(), Key: testKey(t, 0), Audience: "node-a", AllowUnattested: true,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListPads(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := c.ListPads(context.Background(), nil); err == nil {
		t.Fatal("request after shutdown succeeded")
	}
}
