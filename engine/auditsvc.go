package engine

import (
	"context"
	"strconv"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
)

// Audit returns the log events that touch the caller's Pads or their descendants, or that the
// caller caused, and only those.
func (e *Engine) Audit(ctx context.Context, caller *party.Identity, q *api.AuditQuery) (*api.AuditPage, error) {
	e.rememberParty(ctx, caller)
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, err
	}
	me := caller.ID().String()
	visible := descendantsOf(recs, func(r *padRecord) bool { return r.Owner == me })
	scope := visible
	if q.Pad != "" {
		if !visible[q.Pad] {
			return nil, api.Errorf(api.ErrNotFound, "no Pad %s among yours or their descendants", q.Pad)
		}
		scope = descendantsOf(recs, func(r *padRecord) bool { return r.ID == q.Pad })
	}
	match := func(ev *audit.Event) bool {
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
		return q.Pad == "" && ev.Actor == me
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

// Lineage returns a Pad's ancestors and descendants with their states.
func (e *Engine) Lineage(ctx context.Context, caller *party.Identity, id string) (*api.Lineage, error) {
	e.rememberParty(ctx, caller)
	root, err := e.padRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, err
	}
	in := descendantsOf(recs, func(r *padRecord) bool { return r.ID == id })
	byID := map[string]*padRecord{}
	for _, r := range recs {
		byID[r.ID] = r
	}
	for stack := []string{root.ID}; len(stack) > 0; {
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

// Receipt returns the receipt logged at index id, freshly proven under the latest head.
func (e *Engine) Receipt(ctx context.Context, caller *party.Identity, id string) ([]byte, error) {
	idx, err := strconv.ParseInt(id, 10, 64)
	if err != nil || idx < 0 {
		return nil, api.Errorf(api.ErrNotFound, "no receipt %q (receipt ids are log indexes)", id)
	}
	r, err := e.audit.Receipt(ctx, idx)
	if err != nil {
		return nil, api.Errorf(api.ErrNotFound, "no receipt %s: %v", id, err)
	}
	return r.Marshal()
}
