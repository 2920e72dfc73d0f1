package engine

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
)

// TestChainCacheSeesChangesAtOnce loads a Pad's chain for a query, then revokes, updates or
// deletes the Pad on this engine: the very next query's chain shows it, well within the cache's
// TTL.
func TestChainCacheSeesChangesAtOnce(t *testing.T) {
	ctx := context.Background()
	t.Run("revocation", func(t *testing.T) {
		e := newTestEngine(t)
		w := newWorld(t, e, "")
		if ch, err := e.queryChain(ctx, w.pad); err != nil || ch.revoked != "" {
			t.Fatalf("before: revoked %q (%v)", ch.revoked, err)
		}
		w.revoke(t, "consent withdrawn")
		ch, err := e.queryChain(ctx, w.pad)
		if err != nil || ch.revoked != w.pad {
			t.Fatalf("the query right after the revocation sees revoked %q (%v)", ch.revoked, err)
		}
		d, err := e.decideQuery(ctx, ch, w.owner.Identity().ID(), w.prog)
		if err != nil || d.Allow || !strings.Contains(d.Reasons[0].Text, "consent withdrawn") {
			t.Fatalf("decision after revocation: %+v (%v)", d, err)
		}
	})
	t.Run("policy update", func(t *testing.T) {
		e := newTestEngine(t)
		w := newWorld(t, e, "")
		if _, err := e.queryChain(ctx, w.pad); err != nil {
			t.Fatal(err)
		}
		w.update(t, "2", "lifecycle: {max_uses: {query: 1}}")
		ch, err := e.queryChain(ctx, w.pad)
		if err != nil || ch.pc.Sources[0].Policy.Version() != 2 {
			t.Fatalf("the query right after the update decides on version %d (%v)", ch.pc.Sources[0].Policy.Version(), err)
		}
	})
	t.Run("retention", func(t *testing.T) {
		e := newTestEngine(t)
		clock := &offsetClock{}
		e.now = clock.now
		w := newWorld(t, e, "lifecycle: {retention: 1h}")
		if _, err := e.queryChain(ctx, w.pad); err != nil {
			t.Fatal(err)
		}
		clock.advance(2 * time.Hour)
		if got, err := e.SweepRetention(ctx); err != nil || len(got) != 1 {
			t.Fatalf("sweep deleted %v (%v)", got, err)
		}
		if _, err := e.queryChain(ctx, w.pad); err == nil || !strings.Contains(err.Error(), "deleted") {
			t.Fatalf("the query right after the deletion: %v", err)
		}
	})
}

func (w *world) update(t *testing.T, version, lifecycle string) {
	t.Helper()
	u := api.SignPolicyUpdate(w.owner, w.pad, ownerPolicy(w.owner, version, lifecycle), w.e.now())
	if _, err := w.e.UpdatePolicy(context.Background(), w.owner.Identity(), u); err != nil {
		t.Fatalf("update: %v", err)
	}
}

// takeAll takes uses of key from e's leases from conc goroutines until the limit refuses one,
// or until stop uses were taken, and returns how many were taken.
func takeAll(t *testing.T, e *Engine, key policy.CounterKey, limit uint64, conc, stop int) int {
	t.Helper()
	var n atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for n.Load() < int64(stop) {
				ok, err := e.queries.leases.take(context.Background(), e.st, key, limit)
				if err != nil {
					t.Error(err)
					return
				}
				if !ok {
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load())
}

// TestQueryLeasesNeverExceedTheLimit takes a per-querier query counter with a limit of K from
// concurrent queries: exactly K are admitted, and the decision counts uses taken, not leased.
// Across a restart (the unused part of a lease is lost) never more than K in total.
func TestQueryLeasesNeverExceedTheLimit(t *testing.T) {
	ctx := context.Background()
	const K = 100
	querier := newParty(t).Identity().ID()
	key := policy.CounterKey{Pad: "model-a", Action: policy.ActionQuery, Party: querier}
	storeKey := counterKey(key)

	t.Run("concurrent", func(t *testing.T) {
		e := newTestEngine(t)
		took := takeAll(t, e, key, K, 8, 3) // at most 3+7 uses: fewer than the first lease's 12
		used, err := e.queries.leases.uses(ctx, e.st, key)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := e.st.Counter(ctx, storeKey)
		if err != nil {
			t.Fatal(err)
		}
		if int(used) != took || stored != leaseSize(0, K) {
			t.Fatalf("took %d uses: the decision sees %d, the store %d (want %d leased)", took, used, stored, leaseSize(0, K))
		}
		more := takeAll(t, e, key, K, 8, 2*K)
		if total := int(used) + more; total != K {
			t.Fatalf("admitted %d queries under a limit of %d", total, K)
		}
		if stored, _ := e.st.Counter(ctx, storeKey); stored != K {
			t.Fatalf("the store counts %d uses, want exactly %d", stored, K)
		}
	})

	t.Run("restart", func(t *testing.T) {
		ck, err := party.Generate()
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		e, closeAll := openTestEngine(t, dir, ck)
		before := takeAll(t, e, key, K, 4, K/2)
		stored, _ := e.st.Counter(ctx, storeKey)
		closeAll() // a crash: the unused part of the lease is lost
		e, closeAll = openTestEngine(t, dir, ck)
		defer closeAll()
		after := takeAll(t, e, key, K, 4, 2*K)
		total := before + after
		if total > K {
			t.Fatalf("admitted %d queries across a restart under a limit of %d", total, K)
		}
		// A lease is at most an eighth of what was left when it was taken: the part lost is at
		// most about an eighth of what was left at the crash.
		if lost := int(stored) - before; total != K-lost || lost > (K-before)/(leaseFraction-1) {
			t.Fatalf("admitted %d, lost %d of the %d left at the crash", total, lost, K-before)
		}
	})
}

// TestLeaseSize: never past the limit, at most an eighth of what is left, at most maxLease.
func TestLeaseSize(t *testing.T) {
	for _, c := range []struct{ cur, limit, want uint64 }{
		{0, 3, 1}, {0, 8, 1}, {0, 16, 2}, {0, 100, 12}, {90, 100, 1}, {99, 100, 1}, {0, 1 << 40, maxLease},
	} {
		if got := leaseSize(c.cur, c.limit); got != c.want {
			t.Errorf("leaseSize(%d, %d) = %d, want %d", c.cur, c.limit, got, c.want)
		}
	}
}
