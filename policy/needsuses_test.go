package policy

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestNeedsUses checks which policies make a decision read the use counters, and that a decision
// NeedsUses calls counter-free is the same whatever the counters say (but for the values it
// reports having read, in Counter.Used).
func TestNeedsUses(t *testing.T) {
	const head = "version: 1\nowner: ${o}\n"
	permit := "rules: permit (principal, action, resource);\n"
	cases := []struct {
		name string
		src  string
		want map[Action]bool // actions that need the counters; the others do not
	}{
		{"no limits, rules without context", head + permit, nil},
		{"limit on use", head + permit + "lifecycle: {max_uses: {use: 3}}\n", map[Action]bool{ActionUse: true}},
		{"per-party limit on query", head + permit + "lifecycle: {max_uses_per_party: {query: 3}}\n", map[Action]bool{ActionQuery: true}},
		{"limit in a derive rule", head + permit + "derive:\n  model:\n    lifecycle:\n      max_uses_per_party: {query: 100}\n", map[Action]bool{ActionQuery: true}},
		{"rules read context.uses", head + "rules: permit (principal, action, resource) when { context.uses.use < 2 };\n", all(true)},
		{"rules read context.party_uses", head + "rules: permit (principal, action, resource) when { context.party_uses.query < 2 };\n", all(true)},
		{"rules read other context", head + "rules: permit (principal, action, resource) when { context.purpose == \"p\" };\n", nil},
		{"rules use the whole context", head + "rules: permit (principal, action, resource) when { context == context };\n", all(true)},
	}
	e := NewEngine()
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range cases {
		ch := sealedChain("v", mustParse(t, c.src))
		for _, a := range Actions {
			if got := ch.NeedsUses(a); got != c.want[a] {
				t.Errorf("%s: NeedsUses(%s) = %v, want %v", c.name, a, got, c.want[a])
			}
			if ch.NeedsUses(a) {
				continue
			}
			for range 20 {
				req := &Request{Principal: testID("alice"), Action: a, Now: time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC),
					Purpose: "p", TEE: TEEClaims{Type: "tdx"}, Uses: Uses{}}
				for _, b := range Actions {
					req.Uses[CounterKey{Pad: "v", Action: b}] = uint64(r.IntN(5))
					req.Uses[CounterKey{Pad: "v", Action: b, Party: testID("alice")}] = uint64(r.IntN(5))
				}
				bare := *req
				bare.Uses = Uses{}
				with, without := e.Decide(ch, req), e.Decide(ch, &bare)
				for i := range with.Obligations.Counters { // the counters' values as read, for explain texts
					with.Obligations.Counters[i].Used = 0
				}
				if !reflect.DeepEqual(with, without) {
					t.Fatalf("%s, %s: the counters changed a decision NeedsUses called counter-free:\n%+v\n%+v", c.name, a, with, without)
				}
			}
		}
	}
	// A chain needs the counters if any of its sources does.
	free, limited := mustParse(t, head+permit), mustParse(t, head+permit+"lifecycle: {max_uses: {use: 3}}\n")
	ch := &Chain{Pad: PadRef{ID: "v"}, Sources: []Source{{Pad: PadRef{ID: "a"}, Policy: free}, {Pad: PadRef{ID: "b"}, Policy: limited}}}
	if !ch.NeedsUses(ActionUse) || ch.NeedsUses(ActionQuery) {
		t.Fatal(fmt.Sprint("a chain of a free and a limited source: ", ch.NeedsUses(ActionUse), ch.NeedsUses(ActionQuery)))
	}
}

func all(v bool) map[Action]bool {
	m := map[Action]bool{}
	for _, a := range Actions {
		m[a] = v
	}
	return m
}
