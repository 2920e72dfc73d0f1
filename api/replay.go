package api

import (
	"container/heap"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// nonceCache remembers the nonces of accepted requests until their date falls out of the skew
// window, after which the date check alone refuses a replay. It is bounded: when full it refuses
// new nonces (the request fails with 503) rather than forgetting live ones, which would let a
// replay through.
type nonceCache struct {
	mu      sync.Mutex
	max     int
	seen    map[nonceKey]struct{}
	expires expiryHeap
}

type nonceKey struct {
	caller party.ID
	nonce  string
}

type nonceEntry struct {
	key nonceKey
	at  time.Time
}

func newNonceCache(max int) *nonceCache {
	return &nonceCache{max: max, seen: make(map[nonceKey]struct{})}
}

// result of nonceCache.add.
type nonceResult int

const (
	nonceFresh nonceResult = iota
	nonceReplayed
	nonceFull
)

// add records (caller, nonce) as used until expiry, first forgetting entries expired at now.
func (c *nonceCache) add(caller party.ID, nonce string, expiry, now time.Time) nonceResult {
	k := nonceKey{caller, nonce}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.expires) > 0 && !c.expires[0].at.After(now) {
		e := heap.Pop(&c.expires).(nonceEntry)
		delete(c.seen, e.key)
	}
	if _, ok := c.seen[k]; ok {
		return nonceReplayed
	}
	if len(c.seen) >= c.max {
		return nonceFull
	}
	c.seen[k] = struct{}{}
	heap.Push(&c.expires, nonceEntry{k, expiry})
	return nonceFresh
}

func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

type expiryHeap []nonceEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
