package policy

import (
	"github.com/cedar-policy/cedar-go/types"
)

// cedarEntities serves the two entities a Styx request needs without building a map: the
// principal, whose parents are its groups in the evaluated policy, and the requested Pad.
type cedarEntities struct {
	principal, resource types.EntityUID
	in                  *RuleInput
}

func (e *cedarEntities) Get(uid types.EntityUID) (types.Entity, bool) {
	switch uid {
	case e.principal:
		parents := make([]types.EntityUID, len(e.in.Groups))
		for i, g := range e.in.Groups {
			parents[i] = types.NewEntityUID("Styx::Group", types.String(g))
		}
		return types.Entity{UID: uid, Parents: types.NewEntityUIDSet(parents...)}, true
	case e.resource:
		return types.Entity{UID: uid, Attributes: types.NewRecord(types.RecordMap{
			"kind":  types.String(e.in.Pad.Kind),
			"owner": types.NewEntityUID("Styx::Party", types.String(e.in.PadOwner)),
			"depth": types.Long(e.in.Pad.Depth),
		})}, true
	}
	return types.Entity{}, false
}

func cedarUses(m map[Action]uint64) types.Record {
	return types.NewRecord(types.RecordMap{
		"use":     clampLong(m[ActionUse]),
		"query":   clampLong(m[ActionQuery]),
		"release": clampLong(m[ActionRelease]),
		"derive":  clampLong(m[ActionDerive]),
	})
}

func clampLong(n uint64) types.Long {
	if n > 1<<62 {
		return types.Long(1 << 62)
	}
	return types.Long(n)
}

// cedarContext builds the context record of the Styx schema; every attribute is always present, so
// rules never fail on a missing attribute (an absent output has kind "" and size 0).
func cedarContext(in *RuleInput) types.Record {
	r := in.Request
	out := types.RecordMap{"kind": types.String(""), "bytes": types.Long(0), "aggregation": types.Long(0), "recipients": types.NewSet()}
	if r.Output != nil {
		recips := make([]types.Value, len(r.Output.Recipients))
		for i, p := range r.Output.Recipients {
			recips[i] = types.NewEntityUID("Styx::Party", types.String(p.String()))
		}
		out = types.RecordMap{
			"kind":        types.String(r.Output.Kind),
			"bytes":       types.Long(r.Output.Bytes),
			"aggregation": types.Long(r.Output.Aggregation),
			"recipients":  types.NewSet(recips...),
		}
	}
	return types.NewRecord(types.RecordMap{
		"now":        types.NewDatetime(r.Now),
		"purpose":    types.String(r.Purpose),
		"program":    types.String(r.Program),
		"job":        types.String(r.Job),
		"uses":       cedarUses(in.Uses),
		"party_uses": cedarUses(in.PartyUses),
		"depth":      types.Long(in.Depth),
		"tee": types.NewRecord(types.RecordMap{
			"type":        types.String(r.TEE.Type),
			"measurement": types.String(r.TEE.Measurement),
			"debug":       types.Boolean(r.TEE.Debug),
			"simulated":   types.Boolean(r.TEE.Simulated),
			"tcb":         clampLong(r.TEE.TCB),
		}),
		"output": types.NewRecord(out),
	})
}
