package api

import (
	"container/heap"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// nonceCache remembers the nonces of accepted requests until their date falls out of the skew
// window, after which the date check alone refuses a replay. It is bounded: when full it forgets
// the entry whose date is oldest and raises a floor to that date; from then on it refuses every
// request dated at or before the floor, so a forgotten nonce can never be replayed. A flood of
// requests (from fresh keys: any party can sign) therefore cannot lock honest callers out, as a
// cache that refused new nonces when full would: it only narrows the window of accepted dates,
// from the old end, and a caller whose clock is right is not affected until the flood fills the
// cache with requests dated "now".
type nonceCache struct {
	mu      sync.Mutex
	max     int
	seen    map[nonceKey]struct{}
	expires expiryHeap
	floor   time.Time // requests dated at or before it are refused: their nonces may be forgotten
}

type nonceKey struct {
	caller party.ID
	nonce  string
}

type nonceEntry struct {
	key  nonceKey
	date time.Time // the request's signed date
	at   time.Time // when the entry may be forgotten: date + skew
}

func newNonceCache(max int) *nonceCache {
	return &nonceCache{max: max, seen: make(map[nonceKey]struct{})}
}

// result of nonceCache.add.
type nonceResult int

const (
	nonceFresh nonceResult = iota
	nonceReplayed
	nonceTooOld // dated at or before the floor: its nonce may have been forgotten
)

// add records (caller, nonce) of a request signed at date as used until expiry, first forgetting
// entries expired at now, then, if the cache is full, the entry with the oldest date.
func (c *nonceCache) add(caller party.ID, nonce string, date, expiry, now time.Time) nonceResult {
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
	if !date.After(c.floor) {
		return nonceTooOld
	}
	for len(c.seen) >= c.max {
		e := heap.Pop(&c.expires).(nonceEntry)
		delete(c.seen, e.key)
		if e.date.After(c.floor) {
			c.floor = e.date
		}
		if !date.After(c.floor) {
			return nonceTooOld
		}
	}
	c.seen[k] = struct{}{}
	heap.Push(&c.expires, nonceEntry{key: k, date: date, at: expiry})
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
