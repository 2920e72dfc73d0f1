package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// UploadPad stores a sealed Pad. Before anything is committed it checks that the Pad is sealed to
// this cluster, that its policy parses and belongs to the Pad's signer, and that every chunk of
// the payload authenticates: a Pad that would not open later is never stored.
func (e *Engine) UploadPad(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*api.PadInfo, error) {
	e.rememberParty(ctx, caller)
	var head bytes.Buffer
	h, err := pad.Inspect(io.TeeReader(body, &head))
	if err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "not a valid Pad: %v", err)
	}
	pol, err := e.checkUploadHeader(ctx, h)
	if err != nil {
		return nil, err
	}
	full := io.MultiReader(&head, body)
	info, err := e.putVerified(ctx, padBlob(h.ID.String()), full, func(r io.Reader) error {
		_, pt, err := pad.Open(r, e.cfg.Cluster)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, pt)
		return err
	})
	if err != nil {
		return nil, err
	}
	rec := &padRecord{
		ID: h.ID.String(), Owner: h.Signer.ID().String(), Signer: h.Signer.ID().String(),
		ContentType: h.ContentType, Size: h.Size, SealedSize: info.Size,
		PolicyDigest: hexDigest(h.PolicyDigest()), Created: e.now().UTC(),
	}
	if err := e.installPolicy(ctx, rec.ID, pol, h.Policy); err != nil {
		return nil, err
	}
	if err := e.createJSON(ctx, store.Pads, rec.ID, rec); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, api.Errorf(api.ErrConflict, "Pad %s is already on this node", rec.ID)
		}
		return nil, err
	}
	e.log.Info("pad uploaded", "pad", rec.ID, "owner", rec.Owner, "bytes", info.Size)
	return e.padInfo(ctx, rec)
}

func (e *Engine) checkUploadHeader(ctx context.Context, h *pad.Header) (*policy.Policy, error) {
	if h.Derived() {
		return nil, api.Errorf(api.ErrBadRequest, "Pad %s is a derived Pad: derived Pads are made inside the cluster, upload the Pads you sealed", h.ID)
	}
	if !h.IsRecipient(e.cfg.Cluster.Identity().ID()) {
		return nil, api.Errorf(api.ErrBadRequest, "Pad %s is not sealed to this cluster (%s): seal it with --to-cluster", h.ID, e.cfg.Cluster.Identity().ID())
	}
	pol, err := e.parsePolicy(h.Policy)
	if err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "Pad %s carries an invalid policy: %v", h.ID, err)
	}
	if pol.Owner() != h.Signer.ID() {
		return nil, api.Errorf(api.ErrBadRequest, "Pad %s: its policy names owner %s but the Pad is signed by %s", h.ID, pol.Owner(), h.Signer.ID())
	}
	if _, err := e.padRecord(ctx, h.ID.String()); err == nil {
		return nil, api.Errorf(api.ErrConflict, "Pad %s is already on this node", h.ID)
	}
	return pol, nil
}

// installPolicy sets the Pad's first policy version. A retry after a crash finds the same
// version already installed, which is fine if it is the same document.
func (e *Engine) installPolicy(ctx context.Context, id string, pol *policy.Policy, doc []byte) error {
	err := e.st.AdvanceVersion(ctx, policyKey(id), pol.Version(), e.box.seal(store.Versions, policyKey(id), doc))
	if errors.Is(err, store.ErrStale) {
		cur, _, cerr := e.currentPolicy(ctx, id)
		if cerr == nil && cur.Digest() == pol.Digest() {
			return nil
		}
		return api.Errorf(api.ErrConflict, "Pad %s already has a policy version ≥ %d", id, pol.Version())
	}
	return err
}

// putVerified streams r into the blob id while verify reads the same bytes; the blob is
// committed only if verify and the whole stream succeed. A leftover blob from a crash between
// blob and record is replaced.
func (e *Engine) putVerified(ctx context.Context, id string, r io.Reader, verify func(io.Reader) error) (store.BlobInfo, error) {
	if _, err := e.blobs.Stat(ctx, id); err == nil {
		if err := e.blobs.Delete(ctx, id); err != nil {
			return store.BlobInfo{}, err
		}
	}
	pr, pw := io.Pipe()
	type result struct {
		info store.BlobInfo
		err  error
	}
	done := make(chan result, 1)
	go func() {
		info, err := e.blobs.Put(ctx, id, pr)
		pr.CloseWithError(err)
		done <- result{info, err}
	}()
	err := verify(io.TeeReader(r, pw))
	if err == nil {
		// Anything after the Pad is an error of its own; reading to EOF also surfaces a body
		// hash mismatch from the API layer.
		if n, cerr := io.Copy(pw, r); cerr != nil {
			err = cerr
		} else if n > 0 {
			err = fmt.Errorf("%d bytes after the end of the Pad", n)
		}
	}
	if err != nil {
		pw.CloseWithError(err)
		<-done
		if errors.Is(err, api.ErrTooLarge) {
			return store.BlobInfo{}, err
		}
		return store.BlobInfo{}, api.Errorf(api.ErrBadRequest, "upload refused, nothing stored: %v", err)
	}
	pw.Close()
	res := <-done
	return res.info, res.err
}

// Pad describes one Pad. Anyone who knows a Pad's id may see its public description.
func (e *Engine) Pad(ctx context.Context, caller *party.Identity, id string) (*api.PadInfo, error) {
	e.rememberParty(ctx, caller)
	rec, err := e.padRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.padInfo(ctx, rec)
}

// ListPads lists the Pads the caller owns, the Pads derived for it, and the descendants of its
// Pads.
func (e *Engine) ListPads(ctx context.Context, caller *party.Identity, req *api.ListPadsRequest) (*api.PadList, error) {
	e.rememberParty(ctx, caller)
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, err
	}
	mine := caller.ID().String()
	visible := descendantsOf(recs, func(r *padRecord) bool { return r.Owner == mine })
	limit := req.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	out := &api.PadList{}
	for _, r := range recs {
		if !visible[r.ID] || r.ID <= req.After || (req.Owner != "" && r.Owner != req.Owner) {
			continue
		}
		if len(out.Pads) == limit {
			out.Next = out.Pads[len(out.Pads)-1].ID
			break
		}
		info, err := e.padInfo(ctx, r)
		if err != nil {
			return nil, err
		}
		out.Pads = append(out.Pads, *info)
	}
	return out, nil
}

// allPads reads every Pad record, sorted by id.
func (e *Engine) allPads(ctx context.Context) ([]*padRecord, error) {
	keys, err := e.st.Keys(ctx, store.Pads, "")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	sort.Strings(keys)
	recs := make([]*padRecord, 0, len(keys))
	for _, k := range keys {
		r, err := e.padRecord(ctx, k)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// descendantsOf returns the ids of the Pads that match root and of everything derived from them.
func descendantsOf(recs []*padRecord, root func(*padRecord) bool) map[string]bool {
	in := map[string]bool{}
	for _, r := range recs {
		if root(r) {
			in[r.ID] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range recs {
			if in[r.ID] {
				continue
			}
			for _, p := range r.Parents {
				if in[p] {
					in[r.ID], changed = true, true
					break
				}
			}
		}
	}
	return in
}

// padInfo renders a record with its lifecycle state.
func (e *Engine) padInfo(ctx context.Context, r *padRecord) (*api.PadInfo, error) {
	info := &api.PadInfo{
		ID: r.ID, Owner: r.Owner, Size: r.SealedSize, State: api.PadLive, Derived: r.Derived,
		Parents: r.Parents, Kind: r.Kind, Created: r.Created,
	}
	if !r.Deleted.IsZero() {
		info.State = api.PadDeleted
		return info, nil
	}
	ch, err := e.loadChain(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	if ch.revoked != "" {
		info.State = api.PadRevoked
		info.RevokedReason = revokedDecision(ch, policy.ActionUse).Reasons[0].Text
	}
	for _, s := range ch.pc.Sources {
		lc := s.Policy.Lifecycle()
		if !lc.Expires.IsZero() && (info.Expires.IsZero() || lc.Expires.Before(info.Expires)) {
			info.Expires = lc.Expires
		}
		if s.Pad.ID == r.ID {
			info.PolicyVersion = s.Policy.Version()
			d := s.Policy.Digest()
			info.PolicySHA256 = hex.EncodeToString(d[:])
			info.MaxUses = lc.MaxUses[policy.ActionUse]
		}
	}
	if info.State == api.PadLive && !info.Expires.IsZero() && !e.now().Before(info.Expires) {
		info.State = api.PadExpired
	}
	uses, err := e.st.Counter(ctx, counterKey(policy.CounterKey{Pad: r.ID, Action: policy.ActionUse}))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	info.Uses = uses
	return info, nil
}
