package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/store"
)

// Audit returns the log events that touch the caller's Pads or their descendants, or that the
// caller caused, and only those.
func (e *Engine) Audit(ctx context.Context, caller *party.Identity, q *api.AuditQuery) (*api.AuditPage, error) {
	e.rememberParty(ctx, caller)
	me := caller.ID().String()
	recs, visible, err := e.visibleTo(ctx, me)
	if err != nil {
		return nil, err
	}
	scope := visible
	if q.Pad != "" {
		if !visible[q.Pad] {
			return nil, api.Errorf(api.ErrNotFound, "no Pad %s among yours or their descendants", q.Pad)
		}
		scope = descendantsOf(recs, func(r *padRecord) bool { return r.ID == q.Pad })
	}
	match := func(ev *audit.Event) bool {
		return touches(ev, scope) || (q.Pad == "" && ev.Actor == me)
	}
	limit := q.Limit
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	entries, next, err := e.audit.Query(ctx, int64(q.From), limit, match)
	if err != nil {
		return nil, err
	}
	page := &api.AuditPage{}
	for _, en := range entries {
		page.Entries = append(page.Entries, api.AuditEntry{Index: uint64(en.Index), Record: en.Record})
	}
	if len(entries) == limit {
		page.Next = uint64(next)
	}
	if h, err := e.head(ctx); err == nil {
		page.Head = h
	}
	return page, nil
}

// AuditHead returns a freshly signed tree head and, if old > 0, a consistency proof from the
// tree of that size.
func (e *Engine) AuditHead(ctx context.Context, caller *party.Identity, old uint64) (*api.TreeHead, error) {
	h, err := e.head(ctx)
	if err != nil {
		return nil, err
	}
	if old > 0 {
		if old > h.Size {
			return nil, api.Errorf(api.ErrConflict, "you saw a tree of size %d but the log has %d records: the log was rolled back or forked", old, h.Size)
		}
		proof, err := e.audit.ProveConsistency(int64(old), int64(h.Size))
		if err != nil {
			return nil, err
		}
		for _, p := range proof {
			h.Proof = append(h.Proof, p[:])
		}
	}
	return h, nil
}

func (e *Engine) head(ctx context.Context) (*api.TreeHead, error) {
	sh, err := e.audit.SignHead(ctx)
	if err != nil {
		return nil, err
	}
	return &api.TreeHead{Size: uint64(sh.Size), Hash: sh.Root[:], Signed: sh.Note, Signer: e.cfg.Cluster.Identity().String()}, nil
}

// visibleTo returns every Pad record and the ids of those party me may see: the Pads it owns
// (sealed by it, or derived for it) and everything derived from them. In other words, a Pad is
// visible to its owner, to the owners of its ancestors and to the party it was derived for.
// Audit events, receipts and lineage are all scoped by this one rule.
func (e *Engine) visibleTo(ctx context.Context, me string) ([]*padRecord, map[string]bool, error) {
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, nil, err
	}
	return recs, descendantsOf(recs, func(r *padRecord) bool { return r.Owner == me }), nil
}

// touches reports whether ev names a Pad in scope, directly or in the receipt it carries.
func touches(ev *audit.Event, scope map[string]bool) bool {
	for _, p := range ev.Pads {
		if scope[p] {
			return true
		}
	}
	if ev.Receipt != nil {
		for _, ref := range append(ev.Receipt.Inputs, ev.Receipt.Outputs...) {
			if scope[ref.Pad] {
				return true
			}
		}
	}
	return false
}

// Lineage returns a Pad's ancestors and descendants with their states. Only a party that may see
// the Pad (see visibleTo) gets it; anyone else is told there is no such Pad, exactly as for an
// id that does not exist.
func (e *Engine) Lineage(ctx context.Context, caller *party.Identity, id string) (*api.Lineage, error) {
	e.rememberParty(ctx, caller)
	if !store.ValidKey(id) {
		return nil, errNoPad(id)
	}
	recs, visible, err := e.visibleTo(ctx, caller.ID().String())
	if err != nil {
		return nil, err
	}
	if !visible[id] {
		return nil, errNoPad(id)
	}
	in := descendantsOf(recs, func(r *padRecord) bool { return r.ID == id })
	byID := map[string]*padRecord{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	for stack := []string{id}; len(stack) > 0; {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range byID[n].Parents {
			if !in[p] && byID[p] != nil {
				in[p] = true
				stack = append(stack, p)
			}
		}
	}
	lin := &api.Lineage{Root: id}
	for _, r := range recs {
		if !in[r.ID] {
			continue
		}
		info, err := e.padInfo(ctx, r)
		if err != nil {
			return nil, err
		}
		lin.Nodes = append(lin.Nodes, api.LineageNode{Pad: r.ID, Owner: r.Owner, State: info.State, Kind: r.Kind,
			Job: r.Job, Program: r.Program, Parents: r.Parents, Created: r.Created})
	}
	return lin, nil
}

// Receipt returns the receipt logged at index id, freshly proven under the latest head. A
// receipt is visible to the party it names (the job's submitter, the release's recipient) and to
// the owners of its input Pads and their ancestors (see visibleTo); anyone else gets the error
// of an index that holds no receipt, so that sequential ids cannot be used to probe the log.
func (e *Engine) Receipt(ctx context.Context, caller *party.Identity, id string) ([]byte, error) {
	idx, err := strconv.ParseInt(id, 10, 64)
	if err != nil || idx < 0 {
		return nil, api.Errorf(api.ErrNotFound, "no receipt %q (receipt ids are log indexes)", id)
	}
	none := api.Errorf(api.ErrNotFound, "no receipt %d visible to you", idx)
	if idx >= e.audit.Size() {
		return nil, none
	}
	en, err := e.audit.Read(idx)
	if err != nil {
		return nil, err
	}
	if en.Event.Receipt == nil {
		return nil, none
	}
	me := caller.ID().String()
	if ev := en.Event; ev.Actor != me && ev.Receipt.Recipient != me {
		_, visible, err := e.visibleTo(ctx, me)
		if err != nil {
			return nil, err
		}
		if !touches(ev, visible) {
			return nil, none
		}
	}
	r, err := e.audit.Receipt(ctx, idx)
	if err != nil {
		return nil, fmt.Errorf("engine: receipt %d: %w", idx, err)
	}
	return r.Marshal()
}
