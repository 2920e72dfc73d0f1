package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
)

// ReleasedPolicyType is the media type of the policy bytes of a Pad produced by a release: a
// record of where the plaintext came from. Once released, the data is the recipient's.
const ReleasedPolicyType = "application/styx-released+json"

// Release lets a Pad's plaintext leave the TEE, re-sealed to the caller and to every recipient
// the policies require, if "release" is allowed on the Pad's whole chain. The release is
// logged with a receipt before the first byte leaves.
func (e *Engine) Release(ctx context.Context, caller *party.Identity, id string) (io.ReadCloser, error) {
	e.rememberParty(ctx, caller)
	ch, err := e.loadChain(ctx, id)
	if err != nil {
		return nil, err
	}
	claim := &policy.OutputClaim{Kind: policy.Kind(ch.pad.Kind), Bytes: ch.pad.Size, Aggregation: ch.pad.Aggregation, Recipients: []party.ID{caller.ID()}}
	if claim.Kind == "" {
		claim.Kind = policy.KindTable
	}
	d, err := e.decide(ctx, ch, request{caller: caller.ID(), action: policy.ActionRelease, output: claim})
	if err != nil {
		return nil, err
	}
	if d.Allow {
		if err := e.reserve(ctx, &d); err != nil {
			return nil, err
		}
	}
	if !d.Allow {
		e.auditDeny(ctx, caller.ID(), ch, "release", d)
		return nil, deniedError("release of "+id, d)
	}
	recipients := []*party.Identity{caller}
	for _, rid := range d.Obligations.Recipients {
		if rid == caller.ID() {
			continue
		}
		ident, err := e.lookupParty(ctx, rid)
		if err != nil {
			return nil, api.Errorf(api.ErrConflict, "the policy requires a copy to %s: %v", rid, err)
		}
		recipients = append(recipients, ident)
	}
	claims := audit.Claims{Kind: audit.ReceiptRelease, Job: "release-" + id, Inputs: []audit.PadRef{{Pad: id, Policy: ch.policyDigest()}},
		Recipient: caller.ID().String(), TEE: e.auditTEE()}
	receipt, err := e.audit.IssueReceipt(ctx, claims, caller.ID().String(), nil)
	if err != nil {
		return nil, fmt.Errorf("engine: release receipt: %w", err)
	}
	doc, _ := json.Marshal(map[string]any{"styx_released": id, "to": caller.ID().String(),
		"receipt": strconv.FormatInt(receipt.Index, 10), "simulated_tee": e.Simulated()})
	rc, pt, err := e.openPad(ctx, ch.pad)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer rc.Close()
		_, err := pad.Seal(pw, pt, pad.SealOptions{Signer: e.cfg.Cluster, Recipients: recipients, PQ: true,
			Policy: doc, PolicyType: ReleasedPolicyType, ContentType: ch.pad.ContentType, Size: ch.pad.Size})
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// policyDigest is the digest a receipt names for the chain's Pad: for a sealed Pad, the policy
// version the chain was loaded with (the one its decisions evaluated, which after an update is no
// longer the one in the Pad's header); for a derived Pad, its derivation record.
func (ch *chain) policyDigest() string {
	if !ch.pad.Derived {
		for _, s := range ch.pc.Sources {
			if s.Pad.ID == ch.pad.ID {
				return hexDigest(s.Policy.Digest())
			}
		}
	}
	return ch.pad.PolicyDigest
}

// auditDeny logs a refused release or query.
func (e *Engine) auditDeny(ctx context.Context, caller party.ID, ch *chain, what string, d policy.Decision) {
	ev := audit.Event{Kind: audit.KindDeny, Actor: caller.String(), Pads: ch.order, Reasons: reasonLines(d),
		Details: map[string]string{"action": what}}
	if _, err := e.audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		e.log.Error("audit deny", "err", err)
	}
}
