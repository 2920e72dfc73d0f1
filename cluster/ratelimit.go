package cluster

import (
	"math"
	"sync"
	"time"
)

// Defaults of the attestation rate limit (Config.AttestationRate, AttestationBurst).
const (
	DefaultAttestationRate  = 10 // bundles per second, on average
	DefaultAttestationBurst = 20 // bundles at once
)

// tokenBucket allows rate events per second on average and up to burst at once.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate float64, burst int, now func() time.Time) *tokenBucket {
	if rate <= 0 {
		rate = DefaultAttestationRate
	}
	if burst <= 0 {
		burst = DefaultAttestationBurst
	}
	if now == nil {
		now = time.Now
	}
	return &tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// take takes a token if there is one; otherwise it says how long until there is.
func (b *tokenBucket) take() (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(b.burst, b.tokens+d.Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
