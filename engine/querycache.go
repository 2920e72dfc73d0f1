package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// chainTTL bounds how long a query reuses a loaded chain. A change stored by this node moves
// e.epoch and reaches the very next query; a revocation or policy update stored by another
// node of the cluster moves it once the store's watch tells of it (Engine.Start), and anything
// else (a retention deletion there, a watch that failed) is seen once the entry is older than
// chainTTL.
const chainTTL = time.Second

// maxCachedChains bounds the chain cache; when full it starts over.
const maxCachedChains = 1024

// chainCache keeps the chains queries loaded, by Pad id, each with the epoch read before it
// was loaded: a revocation, policy update or deletion stored by this engine after that
// moment makes the entry stale, so a query never decides on a chain older than the last
// change this node made. Chains are read-only once loaded, so entries are shared.
type chainCache struct {
	mu sync.Mutex
	m  map[string]chainEntry
}

type chainEntry struct {
	ch     *chain
	epoch  uint64
	loaded time.Time // the real clock, monotonic: tests may move the engine's clock
}

// queryChain returns the chain of Pad id for a query: from the cache while this engine's epoch
// is unchanged and the entry younger than chainTTL, else loaded from the store. Errors are not
// cached.
func (e *Engine) queryChain(ctx context.Context, id string) (*chain, error) {
	epoch := e.epoch.Load()
	c := &e.queries.chains
	c.mu.Lock()
	ent, ok := c.m[id]
	c.mu.Unlock()
	if ok && ent.epoch == epoch && time.Since(ent.loaded) < chainTTL {
		return ent.ch, nil
	}
	loaded := time.Now()
	ch, err := e.loadChain(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedChains {
		c.m = map[string]chainEntry{}
	}
	c.m[id] = chainEntry{ch: ch, epoch: epoch, loaded: loaded}
	c.mu.Unlock()
	return ch, nil
}

// Leases of query counters. A query must not cost a durable compare-and-set, yet a counter
// must never grant more uses than its limit, not even across a crash. So the engine reserves
// uses in blocks ("leases") with one compare-and-set and hands them out from memory: the store
// counts every leased use as used, so a crash loses the unused part of a lease (conservative:
// counters never go back, and a restart never grants extra uses). A lease never goes past the
// limit, and it shrinks near the limit so that a crash loses at most an eighth of what remained.
// Far from the limit a lease holds maxLease uses: one durable write per 256 queries of a
// querier (with 16, the store's writes took about 7 % of a query's CPU in bench query), at the
// price of at most 256 uses lost by a crash.
const (
	maxLease      = 256
	leaseFraction = 8 // a lease is at most 1/leaseFraction of the uses left
	maxLeases     = 1 << 16
	leaseAttempts = 8
	leaseAction   = policy.ActionQuery // only query counters are leased; jobs' stay exact
)

// leaseTable holds this engine's leases by counter. It is keyed by the counter itself, not
// by its store key: a query looks up two counters twice, and building the store keys (the
// querier's id in text) for each lookup was a tenth of the engine's own work per query.
type leaseTable struct {
	mu sync.Mutex
	m  map[policy.CounterKey]*lease
}

// A lease is the uses of one counter this engine holds: the store's counter stood at top after
// this engine's last reservation, and used of them are consumed (counting every use any node
// took before this lease as consumed). used == top: nothing left to hand out.
type lease struct {
	key    string // the counter's store key
	mu     sync.Mutex
	loaded bool
	used   uint64
	top    uint64
}

func (t *leaseTable) get(k policy.CounterKey) *lease {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.m[k]; ok {
		return l
	}
	if t.m == nil {
		t.m = map[policy.CounterKey]*lease{}
	}
	if len(t.m) >= maxLeases {
		t.evict()
	}
	l := &lease{key: counterKey(k)}
	t.m[k] = l
	return l
}

// evict forgets the leases with nothing left, or all of them if none is spent. Forgetting a
// lease that still holds uses loses them (the store counted them): conservative, never more.
func (t *leaseTable) evict() {
	for k, l := range t.m {
		if l.mu.TryLock() {
			spent := l.used == l.top
			l.mu.Unlock()
			if spent {
				delete(t.m, k)
			}
		}
	}
	if len(t.m) >= maxLeases {
		t.m = map[policy.CounterKey]*lease{}
	}
}

// load reads the counter the first time the lease is used. l.mu is held.
func (l *lease) load(ctx context.Context, st *store.Store) error {
	if l.loaded {
		return nil
	}
	n, err := st.Counter(ctx, l.key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	l.used, l.top, l.loaded = n, n, true
	return nil
}

// uses returns the uses of the counter consumed so far, as this engine knows them.
func (t *leaseTable) uses(ctx context.Context, st *store.Store, k policy.CounterKey) (uint64, error) {
	l := t.get(k)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.load(ctx, st); err != nil {
		return 0, err
	}
	return l.used, nil
}

// take consumes one use of the counter if that keeps it at or below limit, leasing a new
// block from the store when this engine's lease is spent. It reports whether a use was taken.
func (t *leaseTable) take(ctx context.Context, st *store.Store, k policy.CounterKey, limit uint64) (bool, error) {
	l := t.get(k)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.load(ctx, st); err != nil {
		return false, err
	}
	if l.used >= limit {
		return false, nil
	}
	if l.used < l.top {
		l.used++
		return true, nil
	}
	for range leaseAttempts {
		n := leaseSize(l.top, limit)
		v, err := st.Reserve(ctx, l.key, n, limit)
		var le *store.LimitError
		if errors.As(err, &le) {
			// Other nodes took uses since our last lease: start from what the store holds.
			l.used, l.top = max(l.used, le.Current), max(l.top, le.Current)
			if le.Current >= limit {
				return false, nil
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("engine: lease of %s: %w", l.key, err)
		}
		l.used, l.top = v-n+1, v
		return true, nil
	}
	return false, fmt.Errorf("engine: lease of %s: %w", l.key, store.ErrContention)
}

// leaseSize is how many uses to lease when the counter stands at cur: an eighth of what is
// left below limit, at least 1 and at most maxLease. cur < limit.
func leaseSize(cur, limit uint64) uint64 {
	return min(max((limit-cur)/leaseFraction, 1), maxLease)
}

// queryUses reads the counters a query decision looks at from this engine's leases.
func (e *Engine) queryUses(ctx context.Context, pad string, caller party.ID) (policy.Uses, error) {
	u := policy.Uses{}
	for _, k := range [2]policy.CounterKey{{Pad: pad, Action: leaseAction}, {Pad: pad, Action: leaseAction, Party: caller}} {
		n, err := e.queries.leases.uses(ctx, e.st, k)
		if err != nil {
			return nil, err
		}
		u[k] = n
	}
	return u, nil
}

// reserveQuery takes one use of every counter a query decision obliges, from leases. A limit
// reached in between denies; a use already taken stays taken (as reserve).
func (e *Engine) reserveQuery(ctx context.Context, d *policy.Decision) error {
	for _, c := range d.Obligations.Counters {
		if c.Key.Action != leaseAction {
			return fmt.Errorf("engine: a query decision obliges a %s counter", c.Key.Action)
		}
		limit := c.Limit
		if limit == 0 {
			limit = math.MaxUint64
		}
		ok, err := e.queries.leases.take(ctx, e.st, c.Key, limit)
		if err != nil {
			return err
		}
		if !ok {
			limitReached(d, c)
			return nil
		}
	}
	return nil
}

// maxDecisions bounds the memo of query decisions; when full it starts over.
const maxDecisions = 4096

// decisionMemo keeps the last reusable allow of a query by model, program and querier, with the
// chain and request it was made on and its validity (policy.Validity): deciding a query again
// on the same chain with the same request but for the time and the counters is a pure function
// of the two, so while the validity holds the decision is the same but for Counter.Used. Only
// the evaluation is skipped: the chain, its revocations and the counters are read as before.
type decisionMemo struct {
	mu sync.Mutex
	m  map[poolKey]*memoDecision
}

type memoDecision struct {
	pc  *policy.Chain
	req policy.Request // Now and Uses zero
	d   policy.Decision
	v   policy.Validity
}

// get returns the memoized decision for k if it was made on the same chain and the same
// request but for req.Now and req.Uses, and still holds at those.
func (m *decisionMemo) get(k poolKey, pc *policy.Chain, req *policy.Request) (policy.Decision, bool) {
	m.mu.Lock()
	en := m.m[k]
	m.mu.Unlock()
	if en == nil || !en.pc.Same(pc) || !sameQueryRequest(&en.req, req) || !en.v.Holds(req.Now, req.Uses) {
		return policy.Decision{}, false
	}
	d := en.d
	// The entry is shared: a caller that appends a reason (a limit reached on reservation) or
	// sets a counter must get its own slices.
	d.Reasons = slices.Clip(d.Reasons)
	d.Obligations.Counters = slices.Clone(d.Obligations.Counters)
	for i := range d.Obligations.Counters {
		c := &d.Obligations.Counters[i]
		c.Used = req.Uses[c.Key]
	}
	return d, true
}

// put remembers d for k if v says it may be reused, and forgets k's entry otherwise.
func (m *decisionMemo) put(k poolKey, pc *policy.Chain, req *policy.Request, d policy.Decision, v policy.Validity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !v.Reusable {
		delete(m.m, k)
		return
	}
	if m.m == nil || len(m.m) >= maxDecisions {
		m.m = map[poolKey]*memoDecision{}
	}
	en := &memoDecision{pc: pc, req: *req, d: d, v: v}
	en.req.Now, en.req.Uses = time.Time{}, nil
	if o := req.Output; o != nil {
		oc := *o
		oc.Recipients = slices.Clone(o.Recipients)
		en.req.Output = &oc
	}
	m.m[k] = en
}

// sameQueryRequest reports whether a and b are the same request but for Now and Uses.
func sameQueryRequest(a, b *policy.Request) bool {
	if a.Principal != b.Principal || a.Action != b.Action || a.Purpose != b.Purpose || a.Program != b.Program ||
		a.Job != b.Job || a.TEE != b.TEE || (a.Output == nil) != (b.Output == nil) {
		return false
	}
	if a.Output == nil {
		return true
	}
	x, y := a.Output, b.Output
	return x.Kind == y.Kind && x.Bytes == y.Bytes && x.Aggregation == y.Aggregation && x.Pending == y.Pending &&
		slices.Equal(x.Recipients, y.Recipients)
}
