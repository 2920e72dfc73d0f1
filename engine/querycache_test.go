package engine

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/pad"
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

// queryPolicy lets anyone query the Pad; LIFECYCLE is replaced by a lifecycle line.
const queryPolicy = `version: VERSION
owner: OWNER
rules: |
  @id("anyone-queries")
  permit (principal, action == Styx::Action::"query", resource);
LIFECYCLE
tee: {allow_simulated: true}
`

// forbidQueries is a later version of queryPolicy that forbids every query.
const forbidQueries = `version: 2
owner: OWNER
rules: |
  @id("no-more")
  forbid (principal, action == Styx::Action::"query", resource);
tee: {allow_simulated: true}
`

func queryPolicyDoc(owner *party.Key, tmpl, version, lifecycle string) []byte {
	s := strings.ReplaceAll(tmpl, "OWNER", owner.Identity().ID().String())
	s = strings.ReplaceAll(s, "VERSION", version)
	return []byte(strings.ReplaceAll(s, "LIFECYCLE", lifecycle))
}

// uploadWith seals a small table under the given policy document and stores it.
func (w *world) uploadWith(t testing.TB, doc []byte) string {
	t.Helper()
	data := []byte("a,b\n1,2\n3,4\n")
	var buf bytes.Buffer
	if _, err := pad.Seal(&buf, bytes.NewReader(data), pad.SealOptions{Signer: w.owner,
		Recipients: []*party.Identity{w.e.ClusterIdentity()}, Policy: doc,
		PolicyType: "application/styx-policy+yaml", ContentType: "text/csv", Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	info, err := w.e.UploadPad(context.Background(), w.owner.Identity(), &buf, int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// countingEngine is the default policy engine, counting the decisions it evaluates.
type countingEngine struct {
	policy.ValidityEngine
	n atomic.Int64
}

func (c *countingEngine) Decide(ch *policy.Chain, req *policy.Request) policy.Decision {
	c.n.Add(1)
	return c.ValidityEngine.Decide(ch, req)
}

func (c *countingEngine) DecideWithValidity(ch *policy.Chain, req *policy.Request) (policy.Decision, policy.Validity) {
	c.n.Add(1)
	return c.ValidityEngine.DecideWithValidity(ch, req)
}

// TestQueryDecisionMemo fills the memo of query decisions with an allow, checks that the next
// query reuses it (no evaluation), then makes a change that must deny: the very next query
// through the query path (chain, decision, counters) is denied, for the policy's own reason.
func TestQueryDecisionMemo(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name, lifecycle string
		change          func(t *testing.T, w *world, clock *offsetClock)
		reason          string // in the deny's reasons
	}{
		{"policy update", "", func(t *testing.T, w *world, _ *offsetClock) {
			u := api.SignPolicyUpdate(w.owner, w.pad, queryPolicyDoc(w.owner, forbidQueries, "2", ""), w.e.now())
			if _, err := w.e.UpdatePolicy(ctx, w.owner.Identity(), u); err != nil {
				t.Fatal(err)
			}
		}, "forbid"},
		{"revocation", "", func(t *testing.T, w *world, _ *offsetClock) { w.revoke(t, "consent withdrawn") }, "consent withdrawn"},
		{"expiry", "lifecycle: {expires: EXPIRES}", func(t *testing.T, w *world, clock *offsetClock) {
			clock.advance(2 * time.Hour)
		}, "lifecycle.expires"},
		{"count limit", "lifecycle: {max_uses_per_party: {query: 3}}", func(t *testing.T, w *world, _ *offsetClock) {}, "3 of 3 used"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEngine(t)
			clock := &offsetClock{}
			e.now = clock.now
			pol := &countingEngine{ValidityEngine: policy.NewEngine().(policy.ValidityEngine)}
			e.pol = pol
			w := &world{e: e, owner: newParty(t), prog: strings.Repeat("ab", 32)}
			lc := strings.ReplaceAll(c.lifecycle, "EXPIRES", e.now().Add(time.Hour).UTC().Format(time.RFC3339))
			w.pad = w.uploadWith(t, queryPolicyDoc(w.owner, queryPolicy, "1", lc))
			querier := newParty(t).Identity().ID()
			query := func() (policy.Decision, error) {
				ch, err := e.queryChain(ctx, w.pad)
				if err != nil {
					t.Fatal(err)
				}
				return e.admitQuery(ctx, ch, querier, w.prog)
			}
			for i := range 3 {
				if c.name == "count limit" && i == 2 {
					break // the third use is the last one the limit grants: taken below
				}
				if d, err := query(); err != nil || !d.Allow {
					t.Fatalf("query %d before the change: %v", i, err)
				}
			}
			if n := pol.n.Load(); n != 1 {
				t.Fatalf("%d evaluations for the queries before the change: the memo was not used", n)
			}
			if c.name == "count limit" {
				if d, err := query(); err != nil || d.Obligations.Counters[1].Used != 2 {
					t.Fatalf("the last allowed query: %+v (%v)", d.Obligations.Counters, err)
				}
			}
			c.change(t, w, clock)
			d, err := query()
			if err == nil || d.Allow {
				t.Fatalf("the first query after the change was allowed")
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("the query after the change was denied for another reason than %q: %v", c.reason, err)
			}
		})
	}
}

// TestQueryDecisionMemoIsBounded fills the memo past its bound: it starts over, never grows.
func TestQueryDecisionMemoIsBounded(t *testing.T) {
	var m decisionMemo
	pc := &policy.Chain{}
	req := &policy.Request{}
	for i := range maxDecisions + 10 {
		m.put(poolKey{pad: fmt.Sprint(i)}, pc, req, policy.Decision{Allow: true}, policy.Validity{Reusable: true})
		if len(m.m) > maxDecisions {
			t.Fatalf("%d entries, more than %d", len(m.m), maxDecisions)
		}
	}
}

// TestSameQueryRequest: every field of a request but Now and Uses tells two requests apart. A
// field added to policy.Request must be compared by sameQueryRequest.
func TestSameQueryRequest(t *testing.T) {
	if n := reflect.TypeFor[policy.Request]().NumField(); n != 9 {
		t.Fatalf("policy.Request has %d fields: check that sameQueryRequest compares the new ones", n)
	}
	if n := reflect.TypeFor[policy.OutputClaim]().NumField(); n != 5 {
		t.Fatalf("policy.OutputClaim has %d fields: check that sameQueryRequest compares the new ones", n)
	}
	a, b := newParty(t).Identity().ID(), newParty(t).Identity().ID()
	base := func() *policy.Request {
		return &policy.Request{Principal: a, Action: policy.ActionQuery, Now: time.Unix(1, 0), Program: "p", TEE: policy.TEEClaims{Type: "sim"},
			Output: &policy.OutputClaim{Kind: policy.KindPrediction, Recipients: []party.ID{a}}, Uses: policy.Uses{{Pad: "x"}: 1}}
	}
	same := base()
	same.Now, same.Uses = time.Unix(2, 0), nil
	if !sameQueryRequest(base(), same) {
		t.Fatal("requests that differ in Now and Uses only are not the same")
	}
	for name, change := range map[string]func(*policy.Request){
		"principal":   func(r *policy.Request) { r.Principal = b },
		"action":      func(r *policy.Request) { r.Action = policy.ActionUse },
		"purpose":     func(r *policy.Request) { r.Purpose = "x" },
		"program":     func(r *policy.Request) { r.Program = "q" },
		"job":         func(r *policy.Request) { r.Job = "j" },
		"tee":         func(r *policy.Request) { r.TEE.TCB = 1 },
		"no output":   func(r *policy.Request) { r.Output = nil },
		"kind":        func(r *policy.Request) { r.Output.Kind = policy.KindLog },
		"bytes":       func(r *policy.Request) { r.Output.Bytes = 1 },
		"aggregation": func(r *policy.Request) { r.Output.Aggregation = 1 },
		"pending":     func(r *policy.Request) { r.Output.Pending = true },
		"recipients":  func(r *policy.Request) { r.Output.Recipients = []party.ID{b} },
	} {
		r := base()
		change(r)
		if sameQueryRequest(base(), r) {
			t.Errorf("requests with a different %s are the same", name)
		}
	}
}

// TestQueryDecisionMemoConcurrent queries from many goroutines under a per-querier limit, with
// the memo shared (run it with -race): exactly the limit is admitted.
func TestQueryDecisionMemoConcurrent(t *testing.T) {
	ctx := context.Background()
	const K = 50
	e := newTestEngine(t)
	w := &world{e: e, owner: newParty(t), prog: strings.Repeat("cd", 32)}
	w.pad = w.uploadWith(t, queryPolicyDoc(w.owner, queryPolicy, "1", fmt.Sprintf("lifecycle: {max_uses_per_party: {query: %d}}", K)))
	querier := newParty(t).Identity().ID()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range K {
				ch, err := e.queryChain(ctx, w.pad)
				if err != nil {
					t.Error(err)
					return
				}
				if d, err := e.admitQuery(ctx, ch, querier, w.prog); err == nil && d.Allow {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != K {
		t.Fatalf("%d queries admitted under a limit of %d", n, K)
	}
}

// TestOtherNodesChangesReachThisNode: a policy update and a revocation stored by one node move
// the epoch of another node of the cluster (its watch of the store), so that its running jobs
// decide again at their next read and its cached query chains are dropped at once rather than
// after chainTTL.
func TestOtherNodesChangesReachThisNode(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	other := newEngineOn(t, e)
	other.Start(ctx)
	waitEpoch := func(from uint64, what string) uint64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for other.epoch.Load() == from {
			if time.Now().After(deadline) {
				t.Fatalf("%s on one node: the other's epoch did not move in 10 s", what)
			}
			time.Sleep(time.Millisecond)
		}
		return other.epoch.Load()
	}
	if _, err := other.queryChain(ctx, w.pad); err != nil {
		t.Fatal(err)
	}
	epoch := other.epoch.Load()
	w.update(t, "2", "")
	epoch = waitEpoch(epoch, "a policy update")
	ch, err := other.queryChain(ctx, w.pad)
	if err != nil {
		t.Fatal(err)
	}
	if v := ch.pc.Sources[0].Policy.Version(); v != 2 {
		t.Fatalf("the other node's query chain after the update has policy version %d", v)
	}
	w.revoke(t, "withdrawn")
	waitEpoch(epoch, "a revocation")
	if ch, err = other.queryChain(ctx, w.pad); err != nil {
		t.Fatal(err)
	}
	if ch.revoked != w.pad {
		t.Fatalf("the other node's query chain after the revocation: revoked %q", ch.revoked)
	}
}
