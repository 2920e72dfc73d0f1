package policy

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

var validityIters = flag.Int("validity.iters", 3000, "random chains TestValidityProperty decides")

// randomValidityPolicy writes a random valid policy whose base and derive sections carry
// lifecycle windows and use limits, and whose rules sometimes read context.now, the counters
// or the whole context, so that every part of a Validity is exercised.
func randomValidityPolicy(r *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nowner: ${owner%d}\ngroups:\n  g: [${alice}]\n", i)
	b.WriteString("rules: |\n" + randomValidityRules(r))
	b.WriteString(randomLifecycle(r, ""))
	var derive strings.Builder
	for _, k := range Kinds {
		if r.IntN(3) > 0 {
			continue
		}
		fmt.Fprintf(&derive, "  %s:\n", k)
		if r.IntN(3) == 0 {
			derive.WriteString("    rules: |\n" + indent(randomValidityRules(r), "    "))
		}
		if lc := randomLifecycle(r, "    "); lc != "" {
			derive.WriteString(lc)
		} else {
			derive.WriteString("    output: {max_bytes: 1000}\n")
		}
	}
	if derive.Len() > 0 {
		b.WriteString("derive:\n" + derive.String())
	}
	b.WriteString("tee: {types: [tdx]}\n")
	return b.String()
}

// indent prefixes every line of s (which ends in a newline) with by.
func indent(s, by string) string {
	return by + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+by) + "\n"
}

// randomValidityRules is a permit, most often reading neither the time nor the counters.
func randomValidityRules(r *rand.Rand) string {
	conds := []string{
		"", "", "", "",
		` when { context.purpose == "p0" }`,
		` when { principal in Styx::Group::"g" }`,
		` when { context.depth < 3 }`,
		fmt.Sprintf(` when { context.now < datetime("2026-%02d-10T00:00:00Z") }`, 1+r.IntN(12)),
		fmt.Sprintf(` when { context.uses.query < %d }`, 1+r.IntN(4)),
		fmt.Sprintf(` when { context.party_uses.use < %d }`, 1+r.IntN(4)),
		` when { context has now }`,
		` when { context == context }`,
	}
	s := "  permit (principal, action, resource)" + conds[r.IntN(len(conds))] + ";\n"
	if r.IntN(8) == 0 {
		s += "  forbid (principal, action == Styx::Action::\"release\", resource);\n"
	}
	return s
}

// randomLifecycle is a lifecycle block (or "") with a window and limits on use and query.
func randomLifecycle(r *rand.Rand, in string) string {
	var lines []string
	if r.IntN(2) == 0 {
		lines = append(lines, fmt.Sprintf("not_before: 2026-%02d-%02dT00:00:00Z", 1+r.IntN(6), 1+r.IntN(28)))
	}
	if r.IntN(2) == 0 {
		lines = append(lines, fmt.Sprintf("expires: 2026-%02d-%02dT00:00:00Z", 7+r.IntN(6), 1+r.IntN(28)))
	}
	if r.IntN(2) == 0 {
		lines = append(lines, fmt.Sprintf("max_uses: {use: %d, query: %d}", 1+r.IntN(6), 1+r.IntN(6)))
	}
	if r.IntN(2) == 0 {
		lines = append(lines, fmt.Sprintf("max_uses_per_party: {query: %d, derive: %d}", 1+r.IntN(6), 1+r.IntN(6)))
	}
	if len(lines) == 0 {
		return ""
	}
	return in + "lifecycle:\n" + in + "  " + strings.Join(lines, "\n"+in+"  ") + "\n"
}

// randomValidityChain is a sealed Pad under one policy, or a derived Pad with a few sources at
// random distances and path kinds.
func randomValidityChain(t *testing.T, r *rand.Rand) *Chain {
	if r.IntN(4) == 0 {
		return sealedChain("v", mustParse(t, randomValidityPolicy(r, 0)))
	}
	kind := Kinds[r.IntN(len(Kinds))]
	ch := &Chain{Pad: PadRef{ID: "v", Kind: kind, Owner: testID("bob"), Depth: 3}}
	for i := range 1 + r.IntN(3) {
		src := Source{Pad: PadRef{ID: fmt.Sprintf("s%d", i)}, Policy: mustParse(t, randomValidityPolicy(r, i)), Distance: 1 + r.IntN(3)}
		if src.Distance > 1 {
			src.FirstKinds = (kindBit(Kinds[r.IntN(len(Kinds))]) | kindSet(r.IntN(32))).list()
			src.LaterKinds = (kindBit(kind) | kindSet(r.IntN(32))).list()
		}
		ch.Sources = append(ch.Sources, src)
	}
	return ch
}

// randomInstant is an instant of 2026, often right at or next to one of the given ones.
func randomInstant(r *rand.Rand, near ...time.Time) time.Time {
	if n := r.IntN(len(near) + 2); n < len(near) && !near[n].IsZero() {
		return near[n].Add(time.Duration(r.IntN(3)-1) * time.Nanosecond)
	}
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.IntN(365*24)) * time.Hour)
}

// randomUses sets every counter a decision on pad v by who can read, often right at or next to
// a limit.
func randomUses(r *rand.Rand, who Request, limits []CounterLimit) Uses {
	u := Uses{}
	for _, a := range Actions {
		for _, k := range []CounterKey{{Pad: "v", Action: a}, {Pad: "v", Action: a, Party: who.Principal}} {
			u[k] = uint64(r.IntN(5))
		}
	}
	for _, l := range limits {
		if r.IntN(2) == 0 {
			u[l.Key] = l.Limit - min(l.Limit, uint64(r.IntN(2)))
		}
	}
	return u
}

func withoutUsed(d Decision) Decision {
	d.Obligations.Counters = append([]Counter(nil), d.Obligations.Counters...)
	for i := range d.Obligations.Counters {
		d.Obligations.Counters[i].Used = 0
	}
	return d
}

// TestValidityProperty decides random requests on random chains, and wherever the allow's
// Validity says it holds at another instant with other counters, decides again there from
// scratch: the decision must be the same but for Counter.Used. It also counts probes outside
// the validity whose decision did change, so a validity that is merely always false, or a
// generator that never reaches a boundary, fails too.
func TestValidityProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	e := NewEngine().(ValidityEngine)
	var allows, reusable, held, changedOutside int
	for iter := range *validityIters {
		ch := randomValidityChain(t, r)
		req := &Request{Principal: testID([]string{"alice", "bob"}[r.IntN(2)]), Action: Actions[r.IntN(len(Actions))],
			Purpose: "p0", TEE: TEEClaims{Type: "tdx"}, Output: &OutputClaim{Kind: ch.Pad.Kind, Bytes: 10}}
		if ch.Pad.Kind == "" {
			req.Output.Kind = KindPrediction
		}
		req.Now = randomInstant(r)
		req.Uses = randomUses(r, *req, nil)
		d, v := e.DecideWithValidity(ch, req)
		if !reflect.DeepEqual(d, e.Decide(ch, req)) {
			t.Fatalf("iteration %d: DecideWithValidity decides otherwise than Decide", iter)
		}
		if !d.Allow {
			if v.Reusable {
				t.Fatalf("iteration %d: a deny is reusable", iter)
			}
			continue
		}
		allows++
		if !v.Holds(req.Now, req.Uses) {
			if v.Reusable {
				t.Fatalf("iteration %d: a reusable allow does not hold where it was made: %+v", iter, v)
			}
			continue
		}
		reusable++
		want := withoutUsed(d)
		for range 30 {
			again := *req
			again.Now = randomInstant(r, v.From, v.Until, req.Now)
			again.Uses = randomUses(r, *req, v.Limits)
			got := e.Decide(ch, &again)
			same := reflect.DeepEqual(withoutUsed(got), want)
			if v.Holds(again.Now, again.Uses) {
				held++
				if !same {
					t.Fatalf("iteration %d: validity %+v holds at %s with %v, but deciding again there gives\n%s\ninstead of\n%s",
						iter, v, again.Now, again.Uses, got.Explain(), d.Explain())
				}
			} else if !same {
				changedOutside++
			}
		}
	}
	t.Logf("%d allows, %d reusable, %d probes held, %d changed outside", allows, reusable, held, changedOutside)
	if n := *validityIters; reusable < n/20 || held < n || changedOutside < n/10 {
		t.Errorf("the generator does not exercise validity: %d reusable allows, %d probes held, %d changed outside", reusable, held, changedOutside)
	}
}

// TestValidityNotReusable: rules that read the time or the counters, or are not Cedar, make an
// allow not reusable; so does a deny.
func TestValidityNotReusable(t *testing.T) {
	const head = "version: 1\nowner: ${o}\n"
	e := NewEngine().(ValidityEngine)
	req := &Request{Principal: testID("alice"), Action: ActionQuery, Now: mustTime(t, "2026-03-01T00:00:00Z"), Uses: Uses{}}
	for _, c := range []struct {
		name, src string
		reusable  bool
	}{
		{"plain permit", head + "rules: permit (principal, action, resource);\n", true},
		{"reads purpose", head + "rules: permit (principal, action, resource) when { context.purpose == \"\" };\n", true},
		{"reads now", head + "rules: permit (principal, action, resource) when { context.now < datetime(\"2027-01-01\") };\n", false},
		{"reads uses", head + "rules: permit (principal, action, resource) when { context.uses.query < 9 };\n", false},
		{"reads party uses", head + "rules: permit (principal, action, resource) when { context.party_uses.query < 9 };\n", false},
		{"whole context", head + "rules: permit (principal, action, resource) when { context == context };\n", false},
		{"deny", head + "rules: forbid (principal, action, resource);\n", false},
		{"derive rule reads now", head + "rules: permit (principal, action, resource);\nderive:\n  model:\n    rules: permit (principal, action, resource) when { context has now };\n", false},
	} {
		ch := sealedChain("v", mustParse(t, c.src))
		if strings.Contains(c.name, "derive") {
			ch = &Chain{Pad: PadRef{ID: "m", Kind: KindModel}, Sources: []Source{{Pad: PadRef{ID: "v"}, Policy: ch.Sources[0].Policy, Distance: 1}}}
		}
		if _, v := e.DecideWithValidity(ch, req); v.Reusable != c.reusable {
			t.Errorf("%s: reusable %v, want %v", c.name, v.Reusable, c.reusable)
		}
	}
	var other Rules = opaqueRules{}
	if rulesIgnoreNowAndUses(other) {
		t.Error("rules in another language are assumed to ignore the time and the counters")
	}
}

type opaqueRules struct{}

func (opaqueRules) Evaluate(*RuleInput) (bool, []Reason) { return true, nil }
func (opaqueRules) GroupRefs() []string                  { return nil }
func (opaqueRules) Len() int                             { return 1 }

// TestChainSame: every field of a chain and its sources counts, so a change to any of them is
// a different chain. A field added to Source must be added to Chain.Same.
func TestChainSame(t *testing.T) {
	if n := reflect.TypeFor[Source]().NumField(); n != 6 {
		t.Fatalf("Source has %d fields: check that Chain.Same compares the new ones", n)
	}
	p := mustParse(t, "version: 1\nowner: ${o}\nrules: permit (principal, action, resource);\n")
	p2 := mustParse(t, "version: 1\nowner: ${o}\nrules: permit (principal, action, resource);\n")
	base := func() *Chain {
		return &Chain{Pad: PadRef{ID: "v", Kind: KindModel}, Sources: []Source{{Pad: PadRef{ID: "s"}, Policy: p, Distance: 2,
			FirstKinds: []Kind{KindTable}, LaterKinds: []Kind{KindModel}}}}
	}
	if !base().Same(base()) {
		t.Fatal("equal chains are not the same")
	}
	for name, change := range map[string]func(*Chain){
		"pad":         func(c *Chain) { c.Pad.Depth = 1 },
		"source pad":  func(c *Chain) { c.Sources[0].Pad.ID = "t" },
		"policy":      func(c *Chain) { c.Sources[0].Policy = p2 },
		"distance":    func(c *Chain) { c.Sources[0].Distance = 3 },
		"first kinds": func(c *Chain) { c.Sources[0].FirstKinds = []Kind{KindLog} },
		"later kinds": func(c *Chain) { c.Sources[0].LaterKinds = nil },
		"revocation":  func(c *Chain) { c.Sources[0].RevokedAt = time.Unix(1, 0) },
		"sources":     func(c *Chain) { c.Sources = append(c.Sources, c.Sources[0]) },
	} {
		c := base()
		change(c)
		if base().Same(c) {
			t.Errorf("a different %s is the same chain", name)
		}
	}
}
