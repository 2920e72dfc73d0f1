package engine

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/styx-tee/styx/policy"
)

// testChain builds a chain from records the way loadChain walks them: breadth-first from the
// root, with the longest distances.
func testChain(root string, recs ...*padRecord) (*chain, map[string]int) {
	ch := &chain{nodes: map[string]*padRecord{}}
	for _, r := range recs {
		ch.nodes[r.ID] = r
	}
	dist := map[string]int{root: 0}
	ch.order = []string{root}
	seen := map[string]bool{root: true}
	for i := 0; i < len(ch.order); i++ {
		for _, p := range ch.nodes[ch.order[i]].Parents {
			dist[p] = max(dist[p], dist[ch.order[i]]+1)
			if !seen[p] {
				seen[p] = true
				ch.order = append(ch.order, p)
			}
		}
	}
	if err := relaxDistances(ch, dist); err != nil {
		panic(err)
	}
	return ch, dist
}

// TestRelaxDistancesRefusesCycles: parent records that loop (which no derivation can make, so
// only tampered state can) end the walk with an error instead of looping forever.
func TestRelaxDistancesRefusesCycles(t *testing.T) {
	ch := &chain{pad: &padRecord{ID: "a"}, nodes: map[string]*padRecord{
		"a": {ID: "a", Derived: true, Parents: []string{"b"}},
		"b": {ID: "b", Derived: true, Parents: []string{"c"}},
		"c": {ID: "c", Derived: true, Parents: []string{"a"}},
	}, order: []string{"a", "b", "c"}}
	err := relaxDistances(ch, map[string]int{"a": 0, "b": 1, "c": 2})
	if !errors.Is(err, errTamperedState) {
		t.Fatalf("cycle: %v", err)
	}
}

// TestPathKinds: every sealed ancestor learns the kinds of its children on the paths to the root
// and of every Pad below them, so the root obeys each of their derive rules (a table derived from
// a model obeys the model rule).
func TestPathKinds(t *testing.T) {
	derived := func(id, kind string, parents ...string) *padRecord {
		return &padRecord{ID: id, Derived: true, Kind: kind, Parents: parents}
	}
	// s → m (model) → m2 (model) → t (table); s → a (aggregate) → m2; s → t; r → m.
	ch, dist := testChain("t",
		&padRecord{ID: "s"}, &padRecord{ID: "r"},
		derived("m", "model", "s", "r"), derived("a", "aggregate", "s"),
		derived("m2", "model", "a", "m"), derived("t", "table", "m2", "s"))
	got, err := pathKinds(ch, dist)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"s": "[model aggregate table] [model table]",
		"r": "[model] [model table]",
	}
	for id, w := range want {
		if g := fmt.Sprint(got[id].first.list(), got[id].later.list()); g != w {
			t.Errorf("%s: path kinds %s, want %s", id, g, w)
		}
	}
	if dist["s"] != 3 || dist["r"] != 3 {
		t.Errorf("distances %v", dist)
	}
	if g := got["t"]; g.first != 0 || g.later != 0 {
		t.Errorf("the root has path kinds %v", g)
	}
}

func TestPathKindsRefusesUnknownKind(t *testing.T) {
	ch, dist := testChain("w", &padRecord{ID: "s"}, &padRecord{ID: "w", Derived: true, Kind: "weights", Parents: []string{"s"}})
	if _, err := pathKinds(ch, dist); !errors.Is(err, errTamperedState) {
		t.Fatalf("got %v, want a tampered-state error", err)
	}
}

// A limit reached at reservation (a lost race) names the rule a decision would have named, so
// that callers and tests can tell a per-party limit from a Pad's total.
func TestLimitReachedNamesTheRule(t *testing.T) {
	alice := newParty(t).Identity().ID()
	for _, c := range []struct {
		key  policy.CounterKey
		rule string
	}{
		{policy.CounterKey{Pad: "pad-a", Action: policy.ActionUse}, "lifecycle.max_uses.use"},
		{policy.CounterKey{Pad: "pad-a", Action: policy.ActionQuery, Party: alice}, "lifecycle.max_uses_per_party.query"},
	} {
		d := policy.Decision{Allow: true}
		limitReached(&d, policy.Counter{Key: c.key, Limit: 3, Sources: []string{"pad-a"}})
		if d.Allow || len(d.Reasons) != 1 || d.Reasons[0].Rule != c.rule || d.Reasons[0].Pad != "pad-a" ||
			!strings.Contains(d.Reasons[0].Text, "of 3 reached") {
			t.Fatalf("%+v: %+v", c.key, d)
		}
	}
}
