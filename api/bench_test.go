package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerifyRequest measures what authentication costs the server per request: strict
// header parse, identity parse, Ed25519 verification and the nonce cache.
func BenchmarkVerifyRequest(b *testing.B) {
	key := testKey(b, 0)
	v := &verifier{audience: "node-a", skew: time.Minute, nonces: newNonceCache(1 << 30), ids: identityCache{max: identityCacheSize}, now: func() time.Time { return testNow }}
	reqs := make([]*http.Request, b.N)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", "/v1/pads/pad-1", nil)
		SignRequest(reqs[i], key, "node-a", EmptySHA256, testNow)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := v.verify(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignRequest measures the client's per-request signing cost.
func BenchmarkSignRequest(b *testing.B) {
	key := testKey(b, 0)
	r := httptest.NewRequest("GET", "/v1/pads/pad-1", nil)
	for b.Loop() {
		SignRequest(r, key, "node-a", EmptySHA256, testNow)
	}
}

// BenchmarkRoundTrip measures one signed GET through the client, TLS and the server.
func BenchmarkRoundTrip(b *testing.B) {
	n := newTestNode(b, Config{})
	c := n.client(b, 0)
	ctx := context.Background()
	info, err := c.UploadPad(ctx, strings.NewReader("pad"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Pad(ctx, info.ID); err != nil {
			b.Fatal(err)
		}
	}
}
