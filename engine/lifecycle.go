package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/store"
)

// UpdatePolicy installs an owner-signed new policy version for a sealed Pad. Versions only go
// up; the new version governs the Pad and, through ancestry, every Pad derived from it at once.
func (e *Engine) UpdatePolicy(ctx context.Context, caller *party.Identity, u *api.SignedPolicyUpdate) (*api.PadInfo, error) {
	e.rememberParty(ctx, caller)
	signer, err := u.Verify()
	if err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "policy update: %v", err)
	}
	rec, err := e.ownedPad(ctx, signer, u.Pad)
	if err != nil {
		return nil, err
	}
	if rec.Derived {
		return nil, api.Errorf(api.ErrBadRequest, "Pad %s is derived: it has no policy of its own; update the policies of its sealed ancestors", rec.ID)
	}
	pol, err := e.parsePolicy(u.Policy)
	if err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "policy update for %s: %v", rec.ID, err)
	}
	if pol.Owner() != signer.ID() {
		return nil, api.Errorf(api.ErrBadRequest, "the new policy names owner %s, not its signer %s", pol.Owner(), signer.ID())
	}
	key := policyKey(rec.ID)
	ev := audit.Event{Kind: audit.KindPolicyUpdate, Actor: signer.ID().String(), Pads: []string{rec.ID},
		Details: map[string]string{"version": fmt.Sprint(pol.Version()), "policy": hexDigest(pol.Digest())}}
	if err := e.st.AdvanceVersion(ctx, key, pol.Version(), e.box.seal(store.Versions, key, u.Policy)); err != nil {
		if !errors.Is(err, store.ErrStale) {
			return nil, err
		}
		installed, cur, _ := e.currentPolicy(ctx, rec.ID)
		if installed != nil && cur == pol.Version() && installed.Digest() == pol.Digest() {
			// This very update was installed before, perhaps by a request that crashed before
			// logging it: make sure the log has it.
			if err := e.appendOnce(ctx, ev); err != nil {
				return nil, err
			}
		}
		return nil, api.Errorf(api.ErrConflict, "policy version %d is not above the current version %d of %s: rollback refused", pol.Version(), cur, rec.ID)
	}
	e.epoch.Add(1)
	if _, err := e.audit.Append(ctx, ev); err != nil {
		return nil, err
	}
	e.queries.drop(nil) // warm instances re-check on every query; drop them anyway to release memory early
	return e.padInfo(ctx, rec)
}

// Revoke applies an owner-signed revocation: the Pad and every descendant become unusable at
// once, and the data keys of derived descendants are destroyed.
func (e *Engine) Revoke(ctx context.Context, caller *party.Identity, rv *api.Revocation) (*api.RevokeResult, error) {
	e.rememberParty(ctx, caller)
	signer, err := rv.Verify()
	if err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "revocation: %v", err)
	}
	rec, err := e.ownedPad(ctx, signer, rv.Pad)
	if err != nil {
		return nil, err
	}
	if err := e.createJSON(ctx, store.Revocations, rec.ID, rv); err != nil {
		if !errors.Is(err, store.ErrExists) {
			return nil, err
		}
		// Already revoked: finish what a crash may have interrupted (the log entry of the stored
		// revocation, the shredding), then say so.
		if err := e.logStoredRevocation(ctx, rec.ID); err != nil {
			return nil, err
		}
		if _, serr := e.cascade(ctx, signer.ID(), rec.ID); serr != nil {
			return nil, serr
		}
		return nil, api.Errorf(api.ErrConflict, "Pad %s is already revoked", rec.ID)
	}
	e.epoch.Add(1)
	if _, err := e.audit.Append(ctx, revokeEvent(rv, signer.ID())); err != nil {
		return nil, err
	}
	return e.cascade(ctx, signer.ID(), rec.ID)
}

func revokeEvent(rv *api.Revocation, signer party.ID) audit.Event {
	reason := rv.Reason
	if reason == "" {
		reason = "revoked by its owner (no reason given)"
	}
	return audit.Event{Kind: audit.KindRevoke, Actor: signer.String(), Pads: []string{rv.Pad}, Reasons: []string{reason}}
}

// logStoredRevocation logs the revocation stored for Pad id unless the log already has it.
func (e *Engine) logStoredRevocation(ctx context.Context, id string) error {
	var rv api.Revocation
	if _, err := e.getJSON(ctx, store.Revocations, id, &rv); err != nil {
		return err
	}
	signer, err := rv.Verify()
	if err != nil || rv.Pad != id {
		return fmt.Errorf("%w: stored revocation of %s does not verify", errTamperedState, id)
	}
	return e.appendOnce(ctx, revokeEvent(&rv, signer.ID()))
}

// appendOnce appends ev unless the log holds an event of the same kind, on the same Pads, by the
// same actor, with the same details: how a retried request completes a log entry that a crash
// after its state change lost, without logging it twice. It reads the whole log, which only
// retries of already applied requests pay.
func (e *Engine) appendOnce(ctx context.Context, ev audit.Event) error {
	found, _, err := e.audit.Query(ctx, 0, 1, func(old *audit.Event) bool {
		return old.Kind == ev.Kind && old.Actor == ev.Actor && slices.Equal(old.Pads, ev.Pads) && maps.Equal(old.Details, ev.Details)
	})
	if err != nil || len(found) > 0 {
		return err
	}
	_, err = e.audit.Append(ctx, ev)
	return err
}

// cascade destroys the data keys of every derived Pad at or below id and closes their warm
// query instances.
func (e *Engine) cascade(ctx context.Context, actor party.ID, id string) (*api.RevokeResult, error) {
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, err
	}
	below := descendantsOf(recs, func(r *padRecord) bool { return r.ID == id })
	res := &api.RevokeResult{Pad: id}
	var shredded []string
	for _, r := range recs {
		if !below[r.ID] {
			continue
		}
		if r.ID != id {
			res.Descendants = append(res.Descendants, r.ID)
		}
		if r.Derived {
			if err := e.shred(ctx, r.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, fmt.Errorf("engine: shred %s: %w", r.ID, err)
			}
			shredded = append(shredded, r.ID)
		}
	}
	res.Shredded = shredded
	e.queries.drop(below)
	if len(shredded) > 0 {
		if _, err := e.audit.Append(ctx, audit.Event{Kind: audit.KindDelete, Actor: actor.String(), Pads: shredded,
			Reasons: []string{"revocation of " + id + ": data keys destroyed"}}); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ownedPad returns the record of Pad id if signer owns it.
func (e *Engine) ownedPad(ctx context.Context, signer *party.Identity, id string) (*padRecord, error) {
	rec, err := e.padRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	if rec.Owner != signer.ID().String() {
		return nil, api.Denied(fmt.Sprintf("%s does not own Pad %s (its owner is %s)", signer.ID(), id, rec.Owner))
	}
	return rec, nil
}
