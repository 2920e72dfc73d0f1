package policy

import (
	"fmt"
	"slices"
	"time"
)

// evaluation accumulates the reasons and obligations of one decision over its sources.
type evaluation struct {
	ch        *Chain
	req       *Request
	principal string
	padOwner  string
	uses      map[Action]uint64
	partyUses map[Action]uint64
	reasons   []Reason
	counters  map[CounterKey]*Counter
	order     []CounterKey
	ob        Obligations
	memo      ruleMemo
}

func newEvaluation(ch *Chain, req *Request) *evaluation {
	ev := &evaluation{ch: ch, req: req, principal: req.Principal.String(), counters: map[CounterKey]*Counter{},
		uses: map[Action]uint64{}, partyUses: map[Action]uint64{}}
	if !ch.Pad.Owner.IsZero() {
		ev.padOwner = ch.Pad.Owner.String()
	}
	for _, a := range Actions {
		ev.uses[a] = req.Uses[CounterKey{Pad: ch.Pad.ID, Action: a}]
		ev.partyUses[a] = req.Uses[CounterKey{Pad: ch.Pad.ID, Action: a, Party: req.Principal}]
	}
	ev.ob.TEE = TEERequirements{AllowSimulated: true, AllowDebug: true}
	ev.counter(CounterKey{Pad: ch.Pad.ID, Action: req.Action}, 0, "")
	ev.counter(CounterKey{Pad: ch.Pad.ID, Action: req.Action, Party: req.Principal}, 0, "")
	return ev
}

func (ev *evaluation) deny(src *Source, sec *section, field, format string, args ...any) {
	path := sec.prefix + field
	if field == "tee" || len(field) > 4 && field[:4] == "tee." {
		path = field
	}
	ev.reasons = append(ev.reasons, Reason{Pad: src.Pad.ID, Rule: path, Pos: src.Policy.pos[path], Effect: EffectDeny, Text: fmt.Sprintf(format, args...)})
}

// source evaluates every section of one source that governs the request and merges their
// obligations: the request must satisfy them all.
func (ev *evaluation) source(src *Source) bool {
	first, later := src.pathKinds(ev.ch.Pad.Kind)
	sections := src.Policy.sectionsFor(first, later, src.Distance)
	n := len(ev.reasons)
	if !src.RevokedAt.IsZero() {
		ev.reasons = append(ev.reasons, Reason{Pad: src.Pad.ID, Rule: "revoked", Effect: EffectDeny,
			Text: fmt.Sprintf("revoked by its owner at %s", src.RevokedAt.UTC().Format(time.RFC3339))})
	}
	ev.checkTEE(src, sections[0])
	for _, sec := range sections {
		ev.checkLifecycle(src, sec)
		ev.checkOutput(src, sec)
	}
	ok := len(ev.reasons) == n
	in := RuleInput{Request: ev.req, Principal: ev.principal, Groups: src.Policy.memberOf[ev.req.Principal], Pad: ev.ch.Pad,
		PadOwner: ev.padOwner, Source: src.Pad.ID, Depth: src.Distance, Uses: ev.uses, PartyUses: ev.partyUses,
		policy: src.Policy, memo: &ev.memo}
	merged := map[*InputRule]bool{}
	for _, sec := range sections {
		rulesOK, reasons := sec.rules.Evaluate(&in)
		for i := range reasons {
			if reasons[i].Rule == "rules" {
				reasons[i].Rule = sec.prefix + "rules"
			}
		}
		ev.reasons = append(ev.reasons, reasons...)
		ok = ok && rulesOK
		ev.merge(src, sec, merged)
	}
	return ok
}

// checkTEE reports every TEE requirement the claims miss, not just the first.
func (ev *evaluation) checkTEE(src *Source, sec *section) {
	t, c := src.Policy.tee, ev.req.TEE
	if (c.Simulated || c.Type == "sim") && !t.AllowSimulated {
		ev.deny(src, sec, "tee.allow_simulated", "the TEE evidence is simulated and the policy does not accept simulated evidence")
	}
	if c.Debug && !t.AllowDebug {
		ev.deny(src, sec, "tee.allow_debug", "the TEE runs in debug mode and the policy does not accept debug TEEs")
	}
	if t.Types != nil && !slices.Contains(t.Types, c.Type) {
		ev.deny(src, sec, "tee.types", "TEE type %q is not one of %v", c.Type, t.Types)
	}
	if t.Measurements != nil && !slices.Contains(t.Measurements, c.Measurement) {
		ev.deny(src, sec, "tee.measurements", "TEE measurement %q is not an accepted one", abbrevHex(c.Measurement))
	}
	if c.TCB < t.MinTCB {
		ev.deny(src, sec, "tee.min_tcb", "TEE TCB level %d is below the minimum %d", c.TCB, t.MinTCB)
	}
}

func (ev *evaluation) checkLifecycle(src *Source, sec *section) {
	lc, now := sec.lifecycle, ev.req.Now
	if !lc.NotBefore.IsZero() && now.Before(lc.NotBefore) {
		ev.deny(src, sec, "lifecycle.not_before", "not usable before %s (now %s)", lc.NotBefore.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !lc.Expires.IsZero() && !now.Before(lc.Expires) {
		ev.deny(src, sec, "lifecycle.expires", "expired at %s (now %s)", lc.Expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	a := ev.req.Action
	if limit, ok := lc.MaxUses[a]; ok {
		if ev.uses[a] >= limit {
			ev.deny(src, sec, "lifecycle.max_uses."+string(a), "%s limit reached: %d of %d used", a, ev.uses[a], limit)
		}
		ev.counter(CounterKey{Pad: ev.ch.Pad.ID, Action: a}, limit, src.Pad.ID)
	}
	if limit, ok := lc.MaxUsesPerParty[a]; ok {
		if ev.partyUses[a] >= limit {
			ev.deny(src, sec, "lifecycle.max_uses_per_party."+string(a), "%s limit per party reached: %d of %d used by %s", a, ev.partyUses[a], limit, shortID(ev.principal))
		}
		ev.counter(CounterKey{Pad: ev.ch.Pad.ID, Action: a, Party: ev.req.Principal}, limit, src.Pad.ID)
	}
}

func (ev *evaluation) checkOutput(src *Source, sec *section) {
	out, o := ev.req.Output, sec.output
	if out == nil {
		return
	}
	if o.Kinds != nil && !slices.Contains(o.Kinds, out.Kind) {
		ev.deny(src, sec, "output.kinds", "output kind %q is not allowed (allowed: [%s])", out.Kind, joinKinds(o.Kinds))
	}
	if o.MaxBytes > 0 && out.Bytes > o.MaxBytes {
		ev.deny(src, sec, "output.max_bytes", "output of %d bytes exceeds the maximum of %d", out.Bytes, o.MaxBytes)
	}
	if o.MinAggregation > 0 && out.Kind == KindAggregate && !out.Pending && out.Aggregation < o.MinAggregation {
		ev.deny(src, sec, "output.min_aggregation", "aggregate over %d rows is below the minimum of %d", out.Aggregation, o.MinAggregation)
	}
}

// counter records a counter to reserve, keeping the strictest limit.
func (ev *evaluation) counter(k CounterKey, limit uint64, source string) {
	c, ok := ev.counters[k]
	if !ok {
		c = &Counter{Key: k, Used: ev.req.Uses[k]}
		ev.counters[k] = c
		ev.order = append(ev.order, k)
	}
	if source == "" {
		return
	}
	switch {
	case c.Limit == 0 || limit < c.Limit:
		c.Limit, c.Sources = limit, []string{source}
	case limit == c.Limit:
		c.Sources = append(c.Sources, source)
	}
}

func abbrevHex(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
