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
		if e.in.policy != nil {
			return types.Entity{UID: uid, Parents: e.in.policy.cedarParents[e.in.Request.Principal]}, true
		}
		return types.Entity{UID: uid, Parents: groupSet(e.in.Groups)}, true
	case e.resource:
		m := e.in.memo
		if m == nil {
			m = &ruleMemo{}
		}
		if m.resource == nil {
			m.resource = &types.Entity{UID: uid, Attributes: types.NewRecord(types.RecordMap{
				"kind":  types.String(e.in.Pad.Kind),
				"owner": types.NewEntityUID("Styx::Party", types.String(e.in.PadOwner)),
				"depth": types.Long(e.in.Pad.Depth),
			})}
		}
		return *m.resource, true
	}
	return types.Entity{}, false
}

func groupSet(groups []string) types.EntityUIDSet {
	parents := make([]types.EntityUID, len(groups))
	for i, g := range groups {
		parents[i] = types.NewEntityUID("Styx::Group", types.String(g))
	}
	return types.NewEntityUIDSet(parents...)
}

// ruleMemo caches, for one decision, the parts of the Cedar request that every source shares.
type ruleMemo struct {
	shared   types.RecordMap      // context without depth
	byDepth  map[int]types.Record // full contexts by depth
	resource *types.Entity
}

// cedarContextFor returns the context for in, reusing the decision's memo when there is one.
func cedarContextFor(in *RuleInput) types.Record {
	m := in.memo
	if m == nil {
		return cedarContext(in)
	}
	if r, ok := m.byDepth[in.Depth]; ok {
		return r
	}
	if m.shared == nil {
		m.shared = cedarShared(in)
		m.byDepth = map[int]types.Record{}
	}
	ctx := make(types.RecordMap, len(m.shared)+1)
	for k, v := range m.shared {
		ctx[k] = v
	}
	ctx["depth"] = types.Long(in.Depth)
	r := types.NewRecord(ctx)
	m.byDepth[in.Depth] = r
	return r
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
	ctx := cedarShared(in)
	ctx["depth"] = types.Long(in.Depth)
	return types.NewRecord(ctx)
}

func cedarShared(in *RuleInput) types.RecordMap {
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
	return types.RecordMap{
		"now":        types.NewDatetime(r.Now),
		"purpose":    types.String(r.Purpose),
		"program":    types.String(r.Program),
		"job":        types.String(r.Job),
		"uses":       cedarUses(in.Uses),
		"party_uses": cedarUses(in.PartyUses),
		"tee": types.NewRecord(types.RecordMap{
			"type":        types.String(r.TEE.Type),
			"measurement": types.String(r.TEE.Measurement),
			"debug":       types.Boolean(r.TEE.Debug),
			"simulated":   types.Boolean(r.TEE.Simulated),
			"tcb":         clampLong(r.TEE.TCB),
		}),
		"output": types.NewRecord(out),
	}
}
