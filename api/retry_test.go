package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// flaky answers 503 to the first n requests, then passes them to the API.
type flaky struct {
	n, seen atomic.Int32
	next    http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.seen.Add(1) <= f.n.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

func TestRetriesOnlyIdempotentGETs(t *testing.T) {
	n := newHandlerNode(t, nil)
	f := &flaky{next: n.srv.Handler()}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	c, err := NewClient(ClientConfig{BaseURL: ts.URL, Key: testKey(t, 0), Audience: "node-a", AllowUnattested: true, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A GET is retried with a fresh signature (the server's replay cache would refuse a resend).
	f.n.Store(2)
	if _, err := c.ListPads(ctx, nil); err != nil {
		t.Fatalf("GET after two 503s: %v", err)
	}
	if got := f.seen.Load(); got != 3 {
		t.Fatalf("GET sent %d times, want 3", got)
	}
	// A POST is never retried.
	f.seen.Store(0)
	f.n.Store(1)
	_, err = c.UploadPad(ctx, strings.NewReader("pad"))
	if !errors.Is(err, ErrUnavailable) || f.seen.Load() != 1 {
		t.Fatalf("POST: %v after %d sends", err, f.seen.Load())
	}
	// Retries give up.
	f.seen.Store(0)
	f.n.Store(100)
	if _, err := c.ListPads(ctx, nil); !errors.Is(err, ErrUnavailable) || f.seen.Load() != 3 {
		t.Fatalf("GET against a dead server: %v after %d sends", err, f.seen.Load())
	}
}

// reasonsError is a denial from another package that carries its reasons.
type reasonsError struct{}

func (reasonsError) Error() string     { return "pad x: denied by rule 3" }
func (reasonsError) Reasons() []string { return []string{"rule 3: purpose must be research"} }
func (reasonsError) Unwrap() error     { return ErrDenied }

// waitService checks that a waiting request has a deadline, then reports a foreign denial.
type waitService struct{ *memService }

func (w waitService) Job(ctx context.Context, caller *party.Identity, id string, wait bool) (*JobStatus, error) {
	if _, ok := ctx.Deadline(); wait && !ok {
		return nil, errors.New("a waiting request without a deadline")
	}
	return nil, reasonsError{}
}

func TestWaitIsBoundedAndForeignReasonsArrive(t *testing.T) {
	n := newHandlerNode(t, func(c *Config) { c.Service = waitService{newMemService()} })
	w := n.do(signedRequest(t, testKey(t, 0), "node-a", "GET", "/v1/jobs/j1?wait=true", nil, testNow))
	e := errorOf(t, w)
	if w.Code != 403 || e.Message != "pad x: denied by rule 3" || len(e.Reasons) != 1 || e.Reasons[0] != "rule 3: purpose must be research" {
		t.Fatalf("%d %+v", w.Code, e)
	}
}
