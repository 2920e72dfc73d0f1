package api

import (
	"sync"

	"github.com/styx-tee/styx/party"
)

// identityCache remembers parsed identities: parsing one decodes an ML-KEM key, about as costly
// as the Ed25519 verification itself, and the same few parties sign most requests. It holds
// only what ParseIdentity returned for the exact string, so a hit is as good as a parse. When
// full it starts over, which keeps it bounded without bookkeeping.
type identityCache struct {
	mu  sync.Mutex
	max int
	m   map[string]*party.Identity
}

const identityCacheSize = 1024 // about 10 MB at most: a parsed ML-KEM key is ~7 KB

func (c *identityCache) parse(s string) (*party.Identity, error) {
	c.mu.Lock()
	id, ok := c.m[s]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := party.ParseIdentity(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]*party.Identity)
	}
	c.m[s] = id
	c.mu.Unlock()
	return id, nil
}
