package policy

import (
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/styx-tee/styx/party"
)

// The context's tee and output records are kept between decisions by the fields they come
// from: decisions that differ only there, one after the other and back, each see their own.
func TestCedarContextKeepsNoStaleRecord(t *testing.T) {
	p := mustParse(t, `version: 1
owner: ${owner}
rules: |
  @id("to-a")
  permit (principal, action == Styx::Action::"query", resource)
  when { context.output.recipients.contains(Styx::Party::"${a}") && context.output.kind == "prediction" && !context.tee.debug && context.tee.tcb >= 3 };
`)
	ch := &Chain{Pad: PadRef{ID: "m"}, Sources: []Source{{Pad: PadRef{ID: "m"}, Policy: p}}}
	e := NewEngine()
	decide := func(recipients []party.ID, kind Kind, tee TEEClaims) bool {
		return e.Decide(ch, &Request{Principal: testID("a"), Action: ActionQuery, Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC),
			TEE: tee, Output: &OutputClaim{Kind: kind, Recipients: recipients}}).Allow
	}
	a, b := []party.ID{testID("a")}, []party.ID{testID("b")}
	good, debug, old := TEEClaims{Type: "tdx", TCB: 3}, TEEClaims{Type: "tdx", TCB: 3, Debug: true}, TEEClaims{Type: "tdx", TCB: 2}
	for i, c := range []struct {
		recipients []party.ID
		kind       Kind
		tee        TEEClaims
		want       bool
	}{
		{a, KindPrediction, good, true}, {b, KindPrediction, good, false}, {a, KindPrediction, good, true},
		{a, KindAggregate, good, false}, {a, KindPrediction, debug, false}, {a, KindPrediction, good, true},
		{a, KindPrediction, old, false}, {nil, KindPrediction, good, false}, {[]party.ID{testID("b"), testID("a")}, KindPrediction, good, true},
		{a, KindPrediction, good, true},
	} {
		if got := decide(c.recipients, c.kind, c.tee); got != c.want {
			t.Errorf("decision %d (%d recipients, %s, %+v) allowed %v, want %v", i, len(c.recipients), c.kind, c.tee, got, c.want)
		}
	}
}

// The context record holds only the attributes the rules name, built for every decision:
// counters, the time and the depth still decide each decision, and a rule that reads the
// context as a whole value gets every attribute.
func TestCedarContextHoldsWhatRulesName(t *testing.T) {
	for _, c := range []struct {
		cond string
		want contextUse
	}{
		{`true`, 0},
		{`context.program == "p"`, ctxProgram},
		{`context.output.kind == "prediction" && context has purpose`, ctxOutput | ctxPurpose},
		{`context.uses.query < 3 && context.party_uses.query < 2 && context.depth <= 1`, ctxUses | ctxPartyUses | ctxDepth},
		{`context.now < datetime("2027-01-01T00:00:00Z") && context.tee.debug`, ctxNow | ctxTEE},
		{`context has job && context.job == ""`, ctxJob},
		{`context == context`, ctxAll},
		{`{"a": context}.a has uses`, ctxAll},
	} {
		p := mustParse(t, "version: 1\nowner: ${owner}\nrules: |\n  permit (principal, action, resource) when { "+c.cond+" };\n")
		if got := p.base.rules.(*cedarRules).use; got != c.want {
			t.Errorf("%s: context use %#x, want %#x", c.cond, got, c.want)
		}
	}

	p := mustParse(t, `version: 1
owner: ${owner}
rules: |
  permit (principal, action == Styx::Action::"query", resource)
  when { context.uses.query < 3 && context.party_uses.query < 2 && context.now < datetime("2027-01-01T00:00:00Z") && context.depth == 0 };
`)
	e := NewEngine()
	before, after := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	for i, c := range []struct {
		uses, partyUses uint64
		now             time.Time
		depth           int
		want            bool
	}{
		{0, 0, before, 0, true}, {3, 0, before, 0, false}, {2, 1, before, 0, true}, {2, 2, before, 0, false},
		{0, 0, after, 0, false}, {0, 0, before, 1, false}, {0, 0, before, 0, true},
	} {
		ch := &Chain{Pad: PadRef{ID: "m"}, Sources: []Source{{Pad: PadRef{ID: "m"}, Policy: p, Distance: c.depth}}}
		uses := map[CounterKey]uint64{
			{Pad: "m", Action: ActionQuery}:                     c.uses,
			{Pad: "m", Action: ActionQuery, Party: testID("a")}: c.partyUses,
		}
		if got := e.Decide(ch, &Request{Principal: testID("a"), Action: ActionQuery, Now: c.now, Uses: uses}).Allow; got != c.want {
			t.Errorf("decision %d (%+v): allowed %v, want %v", i, c, got, c.want)
		}
	}
	// One decision, two sources at different depths: each sees its own depth.
	var memo ruleMemo
	req := &Request{Principal: testID("a"), Action: ActionQuery, Now: before}
	for _, depth := range []int{0, 1, 0} {
		rec := cedarContextFor(&RuleInput{Request: req, Depth: depth, memo: &memo}, ctxDepth|ctxProgram)
		if v, ok := rec.Get("depth"); !ok || v != types.Long(depth) {
			t.Errorf("the context of depth %d says %v", depth, v)
		}
	}
}
