package policy

import (
	"slices"

	"github.com/styx-tee/styx/party"
)

// merge folds one source's effective policy into the combined obligations: intersection of allowed
// kinds, TEE types and measurements; minimum of byte limits; maximum of aggregation minimums and
// TCB levels; union of recipients; earliest expiry; shortest retention; every matching input rule.
// Input rules already in merged (a derive rule inherits the base's) are not added again.
func (ev *evaluation) merge(src *Source, sec *section, merged map[*InputRule]bool) {
	o := &ev.ob
	out := sec.output
	o.Output.Kinds = intersect(o.Output.Kinds, out.Kinds)
	if out.MaxBytes > 0 && (o.Output.MaxBytes == 0 || out.MaxBytes < o.Output.MaxBytes) {
		o.Output.MaxBytes = out.MaxBytes
	}
	o.Output.MinAggregation = max(o.Output.MinAggregation, out.MinAggregation)
	for _, r := range out.Recipients {
		if !slices.Contains(o.Recipients, r) {
			o.Recipients = append(o.Recipients, r)
		}
	}
	o.Output.Recipients = o.Recipients
	o.Expires = earlier(o.Expires, sec.lifecycle.Expires)
	if r := sec.lifecycle.Retention; r > 0 && (o.Retention == 0 || r < o.Retention) {
		o.Retention = r
	}
	t := src.Policy.tee
	o.TEE.Types = intersect(o.TEE.Types, t.Types)
	o.TEE.Measurements = intersect(o.TEE.Measurements, t.Measurements)
	o.TEE.AllowSimulated = o.TEE.AllowSimulated && t.AllowSimulated
	o.TEE.AllowDebug = o.TEE.AllowDebug && t.AllowDebug
	o.TEE.MinTCB = max(o.TEE.MinTCB, t.MinTCB)
	if ev.req.Action == ActionUse {
		var rules []InputRule
		for i := range sec.input {
			if r := &sec.input[i]; !merged[r] && r.matches(ev.req.Purpose, ev.req.Program) {
				merged[r] = true
				rules = append(rules, *r)
			}
		}
		if len(rules) == 0 {
			return
		}
		if last := len(o.Input) - 1; last >= 0 && o.Input[last].Source == src.Pad.ID {
			o.Input[last].Rules = append(o.Input[last].Rules, rules...)
		} else {
			o.Input = append(o.Input, SourceInputRules{Source: src.Pad.ID, Rules: rules})
		}
	}
}

// intersect combines two optional sets (nil: unrestricted).
func intersect[T comparable](acc, next []T) []T {
	if next == nil {
		return acc
	}
	if acc == nil {
		return slices.Clone(next)
	}
	out := []T{}
	for _, v := range acc {
		if slices.Contains(next, v) {
			out = append(out, v)
		}
	}
	return out
}

func (ev *evaluation) obligations() Obligations {
	o := ev.ob
	for _, k := range ev.order {
		o.Counters = append(o.Counters, *ev.counters[k])
	}
	if o.Recipients == nil {
		o.Recipients = []party.ID(nil)
	}
	return o
}
