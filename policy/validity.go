package policy

import (
	"slices"
	"time"
)

// A Validity says when a decision may be reused instead of evaluated again: for the same chain
// (Chain.Same) and a request that differs only in Now and Uses, the decision is the same but
// for the Counter.Used values it reports, as long as Holds reports true. Only allows are ever
// reusable; the zero Validity reuses nothing.
type Validity struct {
	// Reusable is false when the decision may not be reused at all: it is a deny, or a rule
	// that applied reads context.now, context.uses or context.party_uses (or is not Cedar, and
	// so may read anything).
	Reusable bool
	// From and Until bound the instants at which the decision holds: From <= now < Until. A
	// zero bound does not bound. They are the latest not_before and the earliest expires of
	// every section the evaluation consulted (the base policy or derive rules of each source).
	From, Until time.Time
	// Limits are the use counters the decision depends on, each with the strictest limit of any
	// consulted section: the decision holds while every counter is below its limit.
	Limits []CounterLimit
}

// A CounterLimit is a counter and the value it must stay below.
type CounterLimit struct {
	Key   CounterKey
	Limit uint64
}

// Holds reports whether a decision with validity v is still the decision at now with the
// counters at uses (absent keys count as zero).
func (v *Validity) Holds(now time.Time, uses Uses) bool {
	if !v.Reusable || now.IsZero() || now.Before(v.From) || (!v.Until.IsZero() && !now.Before(v.Until)) {
		return false
	}
	for _, l := range v.Limits {
		if uses[l.Key] >= l.Limit {
			return false
		}
	}
	return true
}

// A ValidityEngine is an Engine that also says for how long its decisions hold. The default
// engine is one.
type ValidityEngine interface {
	Engine
	DecideWithValidity(ch *Chain, req *Request) (Decision, Validity)
}

var _ ValidityEngine = engine{}

// DecideWithValidity decides like Decide and also returns the decision's Validity.
func (e engine) DecideWithValidity(ch *Chain, req *Request) (Decision, Validity) {
	d := e.Decide(ch, req)
	if !d.Allow {
		return d, Validity{}
	}
	return d, validity(ch, req)
}

// validity computes the Validity of an allow of req on ch by walking the sections the
// evaluation consulted (the same sectionsFor calls) and what each reads beyond the request's
// fixed fields: the lifecycle instants, the use limits of req's action, and the rules' context.
func validity(ch *Chain, req *Request) Validity {
	v := Validity{Reusable: true}
	for i := range ch.Sources {
		src := &ch.Sources[i]
		first, later := src.pathKinds(ch.Pad.Kind)
		for _, sec := range src.Policy.sectionsFor(first, later, src.Distance) {
			if !rulesIgnoreNowAndUses(sec.rules) {
				return Validity{}
			}
			lc := &sec.lifecycle
			if lc.NotBefore.After(v.From) {
				v.From = lc.NotBefore
			}
			v.Until = earlier(v.Until, lc.Expires)
			if l, ok := lc.MaxUses[req.Action]; ok {
				v.tighten(CounterKey{Pad: ch.Pad.ID, Action: req.Action}, l)
			}
			if l, ok := lc.MaxUsesPerParty[req.Action]; ok {
				v.tighten(CounterKey{Pad: ch.Pad.ID, Action: req.Action, Party: req.Principal}, l)
			}
		}
	}
	return v
}

// tighten lowers k's limit to limit, adding k if it has none yet.
func (v *Validity) tighten(k CounterKey, limit uint64) {
	for i := range v.Limits {
		if v.Limits[i].Key == k {
			v.Limits[i].Limit = min(v.Limits[i].Limit, limit)
			return
		}
	}
	v.Limits = append(v.Limits, CounterLimit{Key: k, Limit: limit})
}

// rulesIgnoreNowAndUses reports whether r provably reads neither the time nor a use counter:
// Cedar rules that do not name context.now, context.uses or context.party_uses (nor use the
// context as a whole), or no rules at all. Any other language may read anything.
func rulesIgnoreNowAndUses(r Rules) bool {
	switch r := r.(type) {
	case *cedarRules:
		return r.use&(ctxNow|ctxUses|ctxPartyUses) == 0
	case emptyRules:
		return true
	}
	return false
}

// Same reports whether c and o are the same chain for a decision: the same Pad, and the same
// sources in the same order, each with the same Pad, the same *Policy (so the same document
// and digest), the same distance and path kinds and the same revocation. A decision's Validity
// speaks only of the same chain.
func (c *Chain) Same(o *Chain) bool {
	if c == o {
		return true
	}
	if c == nil || o == nil || c.Pad != o.Pad || len(c.Sources) != len(o.Sources) {
		return false
	}
	for i := range c.Sources {
		a, b := &c.Sources[i], &o.Sources[i]
		if a.Pad != b.Pad || a.Policy != b.Policy || a.Distance != b.Distance || !a.RevokedAt.Equal(b.RevokedAt) ||
			!slices.Equal(a.FirstKinds, b.FirstKinds) || !slices.Equal(a.LaterKinds, b.LaterKinds) {
			return false
		}
	}
	return true
}
