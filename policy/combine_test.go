package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// randomPolicy writes a random but valid policy document from a small vocabulary, so that
// random requests hit every branch: group membership, purpose conditions, forbids, expiry, use
// limits, output kinds and sizes, recipients and TEE types.
func randomPolicy(r *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: %d\nowner: ${owner%d}\n", 1+r.IntN(5), i)
	members := []string{}
	for _, p := range []string{"alice", "bob", "carol"} {
		if r.IntN(6) > 0 {
			members = append(members, "${"+p+"}")
		}
	}
	if len(members) > 0 {
		fmt.Fprintf(&b, "groups:\n  g: [%s]\n", strings.Join(members, ", "))
	}
	b.WriteString("rules: |\n")
	if len(members) > 0 {
		b.WriteString("  permit (principal in Styx::Group::\"g\", action, resource)")
	} else {
		b.WriteString("  permit (principal, action, resource)")
	}
	if r.IntN(3) == 0 {
		fmt.Fprintf(&b, " when { context.purpose == \"p%d\" }", r.IntN(5)/4)
	}
	b.WriteString(";\n")
	if r.IntN(6) == 0 {
		fmt.Fprintf(&b, "  forbid (principal, action == Styx::Action::\"%s\", resource);\n", Actions[r.IntN(len(Actions))])
	}
	fmt.Fprintf(&b, "lifecycle:\n  expires: 2026-%02d-01T00:00:00Z\n  max_uses: {use: %d, query: %d}\n", 2+r.IntN(10), 1+r.IntN(5), 1+r.IntN(5))
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, "  retention: %dh\n", 1+r.IntN(100))
	}
	b.WriteString("output:\n")
	var kinds []string
	for _, k := range Kinds {
		if r.IntN(8) > 0 {
			kinds = append(kinds, string(k))
		}
	}
	fmt.Fprintf(&b, "  kinds: [%s]\n  max_bytes: %d\n  min_aggregation: %d\n  recipients: [${rcpt%d}]\n", strings.Join(kinds, ", "), 100*(1+r.IntN(5)), 1+r.IntN(20), r.IntN(4))
	types := []string{"tdx", "snp"}[:1+r.IntN(2)]
	fmt.Fprintf(&b, "tee:\n  types: [%s]\n", strings.Join(types, ", "))
	return b.String()
}

// randomRequest mostly asks for things most policies allow (early, small, few uses, tdx), and
// sometimes for things they do not, so both outcomes are common.
func randomRequest(r *rand.Rand) *Request {
	often := func() bool { return r.IntN(6) > 0 }
	req := &Request{
		Principal: testID([]string{"alice", "bob", "carol"}[r.IntN(3)]),
		Action:    Actions[r.IntN(2)], // use or query: the actions with limits
		Now:       time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
		Purpose:   "p0",
		TEE:       TEEClaims{Type: "tdx"},
		Output:    &OutputClaim{Kind: Kinds[r.IntN(len(Kinds))], Bytes: int64(r.IntN(100)), Aggregation: 25},
		Uses:      Uses{},
	}
	if !often() {
		req.Now = time.Date(2026, time.Month(1+r.IntN(12)), 15, 0, 0, 0, 0, time.UTC)
	}
	if !often() {
		req.Purpose, req.TEE.Type = "p1", "snp"
	}
	if !often() {
		req.Output.Bytes, req.Output.Aggregation = int64(r.IntN(600)), int64(r.IntN(25))
	}
	for _, a := range Actions {
		if !often() {
			req.Uses[CounterKey{Pad: "v", Action: a}] = uint64(r.IntN(6))
		}
	}
	return req
}

// TestCombinationProperties checks the combination rules on random policies and requests: a chain
// decides exactly like the conjunction of its sources decided one by one, its reasons are the
// union of theirs, and its obligations combine theirs (earliest expiry, shortest retention,
// strictest limits, intersection of kinds and TEE types, union of recipients).
func TestCombinationProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	e := NewEngine()
	allowed := 0
	for iter := range 400 {
		n := 1 + r.IntN(4)
		var all []Source
		kind := Kinds[r.IntN(len(Kinds))]
		for i := range n {
			p := mustParse(t, randomPolicy(r, i))
			name := fmt.Sprintf("s%d", i)
			src := Source{Pad: PadRef{ID: name}, Policy: p, Distance: 1 + r.IntN(3)}
			if src.Distance > 1 {
				// Random paths: some child kinds, and later kinds that include the Pad's own.
				src.FirstKinds = (kindBit(Kinds[r.IntN(len(Kinds))]) | kindSet(r.IntN(32))).list()
				src.LaterKinds = (kindBit(kind) | kindSet(r.IntN(32))).list()
			}
			all = append(all, src)
		}
		req := randomRequest(r)
		whole := e.Decide(&Chain{Pad: PadRef{ID: "v", Kind: kind, Depth: 3}, Sources: all}, req)
		var singles []Decision
		for _, s := range all {
			singles = append(singles, e.Decide(&Chain{Pad: PadRef{ID: "v", Kind: kind, Depth: 3}, Sources: []Source{s}}, req))
		}
		checkCombination(t, iter, whole, singles)
		if whole.Allow {
			allowed++
		}
	}
	if allowed < 20 || allowed > 380 {
		t.Errorf("%d of 400 random requests allowed: the generator does not exercise both outcomes", allowed)
	}
	t.Logf("%d of 400 allowed", allowed)
}

func checkCombination(t *testing.T, iter int, whole Decision, singles []Decision) {
	t.Helper()
	allow := true
	var reasons []string
	var expires time.Time
	var retention time.Duration
	var maxBytes, minAgg int64
	var kinds []Kind
	var recips []party.ID
	limits := map[CounterKey]uint64{}
	for i, s := range singles {
		allow = allow && s.Allow
		for _, r := range s.Reasons {
			reasons = append(reasons, r.String())
		}
		o := s.Obligations
		expires = earlier(expires, o.Expires)
		if o.Retention > 0 && (retention == 0 || o.Retention < retention) {
			retention = o.Retention
		}
		if o.Output.MaxBytes > 0 && (maxBytes == 0 || o.Output.MaxBytes < maxBytes) {
			maxBytes = o.Output.MaxBytes
		}
		minAgg = max(minAgg, o.Output.MinAggregation)
		if i == 0 {
			kinds = o.Output.Kinds
		} else {
			kinds = intersect(kinds, o.Output.Kinds)
		}
		for _, rc := range o.Recipients {
			if !slices.Contains(recips, rc) {
				recips = append(recips, rc)
			}
		}
		for _, c := range o.Counters {
			if l, ok := limits[c.Key]; c.Limit > 0 && (!ok || l == 0 || c.Limit < l) {
				limits[c.Key] = c.Limit
			} else if !ok {
				limits[c.Key] = c.Limit
			}
		}
	}
	fail := func(what string, got, want any) {
		t.Errorf("iteration %d: %s: chain %v, sources combined %v\n%s", iter, what, got, want, whole.Explain())
	}
	if whole.Allow != allow {
		fail("allow", whole.Allow, allow)
	}
	var got []string
	for _, r := range whole.Reasons {
		got = append(got, r.String())
	}
	slices.Sort(got)
	slices.Sort(reasons)
	if !slices.Equal(got, reasons) {
		fail("reasons", got, reasons)
	}
	o := whole.Obligations
	if !o.Expires.Equal(expires) {
		fail("expires", o.Expires, expires)
	}
	if o.Retention != retention {
		fail("retention", o.Retention, retention)
	}
	if o.Output.MaxBytes != maxBytes || o.Output.MinAggregation != minAgg {
		fail("output limits", [2]int64{o.Output.MaxBytes, o.Output.MinAggregation}, [2]int64{maxBytes, minAgg})
	}
	if !slices.Equal(o.Output.Kinds, kinds) {
		fail("kinds", o.Output.Kinds, kinds)
	}
	if len(o.Recipients) != len(recips) {
		fail("recipients", o.Recipients, recips)
	}
	for _, c := range o.Counters {
		if c.Limit != limits[c.Key] {
			fail("counter "+string(c.Key.Action), c.Limit, limits[c.Key])
		}
	}
}
