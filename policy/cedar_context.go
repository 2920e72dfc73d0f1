package policy

import (
	"sync"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/styx-tee/styx/party"
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
	return types.RecordMap{
		"now":        types.NewDatetime(r.Now),
		"purpose":    types.String(r.Purpose),
		"program":    types.String(r.Program),
		"job":        types.String(r.Job),
		"uses":       cedarUses(in.Uses),
		"party_uses": cedarUses(in.PartyUses),
		"tee":        fixedRecords.tee(r.TEE),
		"output":     fixedRecords.output(r.Output),
	}
}

// fixedRecords keeps the context's "tee" and "output" records by the request fields they are
// built from, and nothing else: a serving node's queries repeat them (its own claims; a
// prediction for the querier), and building a Cedar record (copy, sort, hash) is most of a
// decision's allocations. Records are immutable values, so sharing one is safe.
var fixedRecords = &recordCache{tees: map[TEEClaims]types.Record{}, outputs: map[outputKey]types.Record{}}

// maxFixedRecords bounds each map of recordCache; a full map starts over.
const maxFixedRecords = 4096

type recordCache struct {
	mu      sync.Mutex
	tees    map[TEEClaims]types.Record
	outputs map[outputKey]types.Record
}

// outputKey is every field of an OutputClaim with at most one recipient.
type outputKey struct {
	kind         Kind
	bytes, aggr  int64
	recipient    party.ID
	hasRecipient bool
}

func (c *recordCache) tee(t TEEClaims) types.Record {
	c.mu.Lock()
	r, ok := c.tees[t]
	c.mu.Unlock()
	if ok {
		return r
	}
	r = types.NewRecord(types.RecordMap{
		"type":        types.String(t.Type),
		"measurement": types.String(t.Measurement),
		"debug":       types.Boolean(t.Debug),
		"simulated":   types.Boolean(t.Simulated),
		"tcb":         clampLong(t.TCB),
	})
	c.mu.Lock()
	if len(c.tees) >= maxFixedRecords {
		clear(c.tees)
	}
	c.tees[t] = r
	c.mu.Unlock()
	return r
}

// output returns the record of o (an absent output has kind "" and size 0); claims with more
// than one recipient are built each time.
func (c *recordCache) output(o *OutputClaim) types.Record {
	if o == nil {
		o = &OutputClaim{}
	}
	if len(o.Recipients) > 1 {
		return outputRecord(o)
	}
	k := outputKey{kind: o.Kind, bytes: o.Bytes, aggr: o.Aggregation}
	if len(o.Recipients) == 1 {
		k.recipient, k.hasRecipient = o.Recipients[0], true
	}
	c.mu.Lock()
	r, ok := c.outputs[k]
	c.mu.Unlock()
	if ok {
		return r
	}
	r = outputRecord(o)
	c.mu.Lock()
	if len(c.outputs) >= maxFixedRecords {
		clear(c.outputs)
	}
	c.outputs[k] = r
	c.mu.Unlock()
	return r
}

func outputRecord(o *OutputClaim) types.Record {
	recips := make([]types.Value, len(o.Recipients))
	for i, p := range o.Recipients {
		recips[i] = types.NewEntityUID("Styx::Party", types.String(p.String()))
	}
	return types.NewRecord(types.RecordMap{
		"kind":        types.String(o.Kind),
		"bytes":       types.Long(o.Bytes),
		"aggregation": types.Long(o.Aggregation),
		"recipients":  types.NewSet(recips...),
	})
}
