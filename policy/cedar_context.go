package policy

import (
	"sync"

	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

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
	contexts map[contextKey]types.Record // by the attributes present and, if present, the depth
	uses     *[2]types.Record            // uses, party_uses
	resource *types.Entity
}

type contextKey struct {
	use   contextUse
	depth int // 0 unless use has ctxDepth
}

// contextUse is the set of context attributes a rule set's conditions read (a bit each).
type contextUse uint16

const (
	ctxNow contextUse = 1 << iota
	ctxPurpose
	ctxProgram
	ctxJob
	ctxUses
	ctxPartyUses
	ctxTEE
	ctxOutput
	ctxDepth
	ctxAll = ctxDepth<<1 - 1
)

var contextAttrs = map[types.String]contextUse{"now": ctxNow, "purpose": ctxPurpose, "program": ctxProgram, "job": ctxJob,
	"uses": ctxUses, "party_uses": ctxPartyUses, "tee": ctxTEE, "output": ctxOutput, "depth": ctxDepth}

// contextUseOf returns the context attributes p's conditions read: those named in
// context.NAME and context has NAME, or every attribute if context appears any other way
// (as a whole value). A condition cannot observe an attribute it never names, so the
// context record of a rule set may hold only what it names; a policy's rules are parsed
// with it, so an updated policy brings its own set.
func contextUseOf(p *xast.Policy) contextUse {
	var use contextUse
	vars, named := 0, 0
	isContext := func(n xast.IsNode) bool {
		v, ok := n.(xast.NodeTypeVariable)
		return ok && v.Name == "context"
	}
	for _, c := range p.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeTypeAccess:
				if isContext(n.Arg) {
					named++
					use |= contextAttrs[n.Value]
				}
			case xast.NodeTypeHas:
				if isContext(n.Arg) {
					named++
					use |= contextAttrs[n.Value]
				}
			case xast.NodeTypeVariable:
				if n.Name == "context" {
					vars++
				}
			}
			return true
		})
	}
	if vars != named {
		return ctxAll
	}
	return use
}

// cedarContextFor returns the context for in holding the attributes in use, reusing the
// decision's memo when there is one. What it holds is built for every decision: now and the
// counters change between decisions.
func cedarContextFor(in *RuleInput, use contextUse) types.Record {
	m := in.memo
	if m == nil {
		return cedarContext(in, use, nil)
	}
	k := contextKey{use: use}
	if use&ctxDepth != 0 {
		k.depth = in.Depth
	}
	if r, ok := m.contexts[k]; ok {
		return r
	}
	if use&(ctxUses|ctxPartyUses) != 0 && m.uses == nil {
		m.uses = &[2]types.Record{cedarUses(in.Uses), cedarUses(in.PartyUses)}
	}
	r := cedarContext(in, use, m.uses)
	if m.contexts == nil {
		m.contexts = map[contextKey]types.Record{}
	}
	m.contexts[k] = r
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

// cedarContext builds the context record of the Styx schema with the attributes in use (the
// uses records from uses if not nil); with ctxAll every attribute is present, so rules never
// fail on a missing attribute (an absent output has kind "" and size 0).
func cedarContext(in *RuleInput, use contextUse, uses *[2]types.Record) types.Record {
	if use == 0 {
		return types.NewRecord(nil)
	}
	r := in.Request
	ctx := make(types.RecordMap, 9)
	if use&ctxNow != 0 {
		ctx["now"] = types.NewDatetime(r.Now)
	}
	if use&ctxPurpose != 0 {
		ctx["purpose"] = types.String(r.Purpose)
	}
	if use&ctxProgram != 0 {
		ctx["program"] = types.String(r.Program)
	}
	if use&ctxJob != 0 {
		ctx["job"] = types.String(r.Job)
	}
	if use&(ctxUses|ctxPartyUses) != 0 && uses == nil {
		uses = &[2]types.Record{cedarUses(in.Uses), cedarUses(in.PartyUses)}
	}
	if use&ctxUses != 0 {
		ctx["uses"] = uses[0]
	}
	if use&ctxPartyUses != 0 {
		ctx["party_uses"] = uses[1]
	}
	if use&ctxTEE != 0 {
		ctx["tee"] = fixedRecords.tee(r.TEE)
	}
	if use&ctxOutput != 0 {
		ctx["output"] = fixedRecords.output(r.Output)
	}
	if use&ctxDepth != 0 {
		ctx["depth"] = types.Long(in.Depth)
	}
	return types.NewRecord(ctx)
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
