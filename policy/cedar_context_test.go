package policy

import (
	"testing"
	"time"

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
