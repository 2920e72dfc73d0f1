package cluster

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestAttestationRateLimit: the attestation handler produces at most a burst of bundles at
// once and then one per 1/rate seconds; the rest get 429 with Retry-After. Requests refused
// for a bad nonce produce no evidence and cost nothing.
func TestAttestationRateLimit(t *testing.T) {
	n, err := Init(simConfig(t, goodMeasurement))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := n.handler(newTokenBucket(0.5, 2, func() time.Time { return now }))
	get := func(nonce string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, AttestationPath+"?nonce="+nonce, nil))
		return w
	}
	good := hex.EncodeToString(NewNonce())
	for i := range 2 {
		if w := get(good); w.Code != http.StatusOK {
			t.Fatalf("request %d of the burst: %d %s", i, w.Code, w.Body)
		}
	}
	w := get(good)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" {
		t.Fatalf("beyond the burst: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	now = now.Add(2 * time.Second) // one token back
	for range 3 {
		if w := get("zz"); w.Code != http.StatusBadRequest {
			t.Fatalf("bad nonce: %d", w.Code)
		}
	}
	if w := get(good); w.Code != http.StatusOK {
		t.Fatalf("after the refill: %d %s", w.Code, w.Body)
	}
	if w := get(good); w.Code != http.StatusTooManyRequests {
		t.Fatalf("refill gave more than one token: %d", w.Code)
	}
	now = now.Add(time.Hour) // the bucket holds at most the burst
	for i := range 3 {
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if w := get(good); w.Code != want {
			t.Fatalf("after an hour, request %d: %d, want %d", i, w.Code, want)
		}
	}
}

// TestAttestRetriesWhenBusy: a client refused by the rate limit waits as the node asks and
// attests once a token is back.
func TestAttestRetriesWhenBusy(t *testing.T) {
	cfg := simConfig(t, goodMeasurement)
	cfg.AttestationRate, cfg.AttestationBurst = 1, 1
	n, err := Init(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, n)
	c := &Client{Reference: devRef()}
	for i := range 2 {
		if _, err := c.Attest(context.Background(), srv.URL); err != nil {
			t.Fatalf("attestation %d: %v", i, err)
		}
	}
}
