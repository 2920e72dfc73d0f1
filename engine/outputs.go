package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// DerivedPolicyType is the media type of a derived Pad's policy bytes. A derived Pad carries no
// rules of its own: the document records where it came from, and its effective policy is the
// current policy of every sealed ancestor, refined by their derive rules.
const DerivedPolicyType = "application/styx-derived+json"

type derivedDoc struct {
	Derived   int               `json:"styx_derived"`
	Kind      string            `json:"kind"`
	Job       string            `json:"job"`
	Program   string            `json:"program"`
	Submitter string            `json:"submitter"`
	Parents   []audit.PadRef    `json:"parents"`
	TEE       audit.TEEClaims   `json:"tee"`
	Note      string            `json:"note"`
	Simulated *simulatedWarning `json:"simulated,omitempty"`
}

type simulatedWarning struct {
	Warning string `json:"warning"`
}

// outputPipeline checks every output against the derive rules of every Pad that flowed into it,
// then seals all of them as derived Pads, or none.
//
// The watchdog stopped with the program, so the job is first decided again on chains read now:
// a revocation, policy update or expiry of the program's last instants denies it here. A
// revocation stored after this decision but before the derived Pads' records exist would be
// cascaded without them; so once they exist, every input ancestor is checked for revocation
// again, and if one was revoked the outputs are destroyed. Whichever order a revocation and the
// sealing take, no live descendant of a revoked Pad remains. A denial is an *abortError.
func (e *Engine) outputPipeline(ctx context.Context, caller *party.Identity, st *api.JobStatus, h *jobHost) (map[string]string, string, error) {
	adm, err := e.admit(ctx, caller.ID(), st.ID, &st.Spec, false, h.own)
	if err != nil {
		return nil, "", err
	}
	if !adm.allowed {
		return nil, "", &abortError{reasons: adm.reasons()}
	}
	h.adm = adm
	h.attachLogs()
	for _, c := range h.outs {
		c.Close()
		if len(c.from) == 0 {
			c.from = slices.Clone(h.adm.inputs) // wrote before reading anything: derive from all inputs (conservative)
		}
		if err := e.checkOutput(ctx, caller.ID(), st, h, c); err != nil {
			return nil, "", err
		}
	}
	e.at("seal")
	outs := map[string]string{}
	var claims audit.Claims
	claims.Kind, claims.Job, claims.Program, claims.TEE = audit.ReceiptJob, st.ID, st.Spec.Program, e.auditTEE()
	for _, name := range h.adm.inputs {
		ch := h.adm.chains[name]
		claims.Inputs = append(claims.Inputs, audit.PadRef{Pad: ch.pad.ID, Policy: ch.policyDigest()})
	}
	for _, c := range h.outs {
		rec, err := e.sealDerived(ctx, caller, st, h, c)
		if err != nil {
			return nil, "", err
		}
		outs[c.name] = rec.ID
		claims.Outputs = append(claims.Outputs, audit.PadRef{Pad: rec.ID, Policy: rec.PolicyDigest})
	}
	if reasons, err := e.revokedSince(ctx, adm); err != nil || reasons != nil {
		if derr := e.discardOutputs(context.WithoutCancel(ctx), st.ID, "an ancestor was revoked while the job's outputs were sealed"); derr != nil {
			return nil, "", derr
		}
		if err != nil {
			return nil, "", err
		}
		return nil, "", &abortError{reasons: reasons}
	}
	details := map[string]string{"purpose": st.Spec.Purpose}
	if e.Simulated() {
		details["tee"] = "simulated: no hardware protection"
	}
	// The use of the inputs and the job's receipt go to the log in one durable write.
	use := audit.Event{Kind: audit.KindUse, Actor: caller.ID().String(), Job: st.ID,
		Pads: padsOf(h), Details: map[string]string{"program": st.Spec.Program}}
	r, err := e.audit.IssueReceiptAfter(ctx, claims, caller.ID().String(), details, use)
	if err != nil {
		return nil, "", fmt.Errorf("engine: receipt: %w", err)
	}
	return outs, strconv.FormatInt(r.Index, 10), nil
}

// revokedSince reads the revocations of every input and ancestor of an admission again (all at
// once), and returns the reason of the first one found revoked, in input and chain order (nil
// if none).
func (e *Engine) revokedSince(ctx context.Context, a *admission) ([]string, error) {
	type probe struct {
		input string
		ch    *chain
		id    string
		rv    *api.Revocation
		err   error
	}
	var probes []*probe
	for _, name := range a.inputs {
		ch := a.chains[name]
		for _, id := range ch.order {
			probes = append(probes, &probe{input: name, ch: ch, id: id})
		}
	}
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Go(func() { p.rv, p.err = e.revocation(ctx, p.id) })
	}
	wg.Wait()
	for _, p := range probes {
		if p.err != nil {
			return nil, p.err
		}
		if p.rv != nil {
			r := revokedDecision(&chain{pad: p.ch.pad, revoked: p.id, revocation: p.rv}, policy.ActionDerive).Reasons[0]
			return []string{fmt.Sprintf("input %s (%s): %s", p.input, policy.ActionDerive, r)}, nil
		}
	}
	return nil, nil
}

func padsOf(h *jobHost) []string {
	var out []string
	for _, name := range h.read {
		out = append(out, h.adm.chains[name].pad.ID)
	}
	return out
}

// attachLogs routes the program's log lines into a declared log output the program did not
// create itself; without one, logs stay inside the TEE and are dropped.
func (h *jobHost) attachLogs() {
	if h.logs.Len() == 0 {
		return
	}
	for _, o := range h.spec.Outputs {
		if o.Kind != string(policy.KindLog) || slices.ContainsFunc(h.outs, func(c *capture) bool { return c.name == o.Name }) {
			continue
		}
		c := &capture{h: h, name: o.Name, kind: o.Kind, closed: true, from: slices.Clone(h.read)}
		c.buf.Write(h.logs.Bytes())
		h.outs = append(h.outs, c)
		return
	}
}

// logsOnly returns a copy of the host keeping only the program's logs, for a failed job; nil if
// there is nothing to keep.
func (h *jobHost) logsOnly() *jobHost {
	var keep []*capture
	for _, c := range h.outs {
		if c.kind == string(policy.KindLog) {
			keep = append(keep, c)
		}
	}
	cp := *h
	cp.outs = keep
	cp.attachLogs()
	if len(cp.outs) == 0 {
		return nil
	}
	return &cp
}

// checkOutput evaluates "derive" for the output on the chain of every input that flowed into it.
func (e *Engine) checkOutput(ctx context.Context, caller party.ID, st *api.JobStatus, h *jobHost, c *capture) error {
	for _, name := range c.from {
		ch := h.adm.chains[name]
		claim := &policy.OutputClaim{Kind: policy.Kind(c.kind), Bytes: int64(c.buf.Len())}
		if c.kind == string(policy.KindAggregate) {
			claim.Aggregation = h.dataRows(name)
		}
		d, err := e.decide(ctx, ch, request{caller: caller, action: policy.ActionDerive, purpose: st.Spec.Purpose,
			program: st.Spec.Program, job: st.ID, output: claim, own: h.own})
		if err != nil {
			return err
		}
		if !d.Allow {
			return api.Denied(fmt.Sprintf("output %s (%s, %d bytes) refused by the policy of input %s", c.name, c.kind, c.buf.Len(), name), reasonLines(d)...)
		}
	}
	return nil
}

// dataRows is the number of data rows the program read from input name (the header line is not
// a row): what an aggregate's min_aggregation is checked against.
func (h *jobHost) dataRows(name string) int64 { return max(h.rows[name]-1, 0) }

// fewestRows is the fewest data rows read from any of the inputs (0 for none).
func (h *jobHost) fewestRows(inputs []string) int64 {
	var fewest int64
	for i, name := range inputs {
		if n := h.dataRows(name); i == 0 || n < fewest {
			fewest = n
		}
	}
	return fewest
}

// sealDerived seals one output as a derived Pad: signed by the cluster, no key wraps, its data
// key kept only in the node's sealed key store (so revocation can destroy it).
func (e *Engine) sealDerived(ctx context.Context, caller *party.Identity, st *api.JobStatus, h *jobHost, c *capture) (*padRecord, error) {
	doc := derivedDoc{Derived: 1, Kind: c.kind, Job: st.ID, Program: st.Spec.Program, Submitter: caller.ID().String(), TEE: e.auditTEE(),
		Note: "effective policy: the current policy of every sealed ancestor, refined by its derive rule for this kind"}
	if e.Simulated() {
		doc.Simulated = &simulatedWarning{Warning: "derived on a SIMULATED TEE: no hardware protection"}
	}
	var parents []pad.ParentRef
	depth := 0
	var parentIDs []string
	for _, name := range c.from {
		ch := h.adm.chains[name]
		rec, policyHex := ch.pad, ch.policyDigest()
		digest, err := hex.DecodeString(policyHex)
		if err != nil || len(digest) != 32 {
			return nil, fmt.Errorf("%w: policy digest of %s", errTamperedState, rec.ID)
		}
		id, err := pad.ParseID(rec.ID)
		if err != nil {
			return nil, err
		}
		parents = append(parents, pad.ParentRef{ID: id, PolicyDigest: [32]byte(digest)})
		parentIDs = append(parentIDs, rec.ID)
		doc.Parents = append(doc.Parents, audit.PadRef{Pad: rec.ID, Policy: policyHex})
		depth = max(depth, rec.Depth+1)
	}
	docBytes, _ := json.Marshal(doc)
	dk := pad.NewDataKey()
	var sealed bytes.Buffer
	hdr, err := pad.Seal(&sealed, bytes.NewReader(c.buf.Bytes()), pad.SealOptions{
		Signer: e.cfg.Cluster, Policy: docBytes, PolicyType: DerivedPolicyType, ContentType: contentTypeOf(c.kind),
		Parents: parents, DataKey: dk, Size: int64(c.buf.Len()), CreatedAt: e.now(),
	})
	if err != nil {
		return nil, fmt.Errorf("engine: seal output %s: %w", c.name, err)
	}
	d := hdr.PolicyDigest()
	rec := &padRecord{
		ID: hdr.ID.String(), Owner: caller.ID().String(), Signer: e.cfg.Cluster.Identity().ID().String(), Derived: true,
		Kind: c.kind, Parents: parentIDs, Job: st.ID, Program: st.Spec.Program, ContentType: hdr.ContentType,
		Size: hdr.Size, SealedSize: int64(sealed.Len()), Depth: depth, PolicyDigest: hex.EncodeToString(d[:]),
		Created: e.now().UTC(), Simulated: e.Simulated(),
	}
	if c.kind == string(policy.KindAggregate) {
		rec.Aggregation = h.fewestRows(c.from)
	}
	// Key and blob (at once: each waits on its own durable write), then the record that makes
	// the Pad exist: a crash leaves at most an unreachable key or blob, never a Pad without its
	// key.
	var keyErr error
	var wg sync.WaitGroup
	wg.Go(func() { keyErr = e.putDataKey(ctx, rec.ID, dk) })
	_, blobErr := e.blobs.Put(ctx, padBlob(rec.ID), &sealed)
	wg.Wait()
	if err := errors.Join(keyErr, blobErr); err != nil {
		return nil, err
	}
	if err := e.createJSON(ctx, store.Pads, rec.ID, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func contentTypeOf(kind string) string {
	switch policy.Kind(kind) {
	case policy.KindTable:
		return "text/csv"
	case policy.KindModel, policy.KindAggregate:
		return "application/json"
	case policy.KindLog:
		return "text/plain"
	}
	return "application/octet-stream"
}

func (e *Engine) auditTEE() audit.TEEClaims {
	return audit.TEEClaims{Type: string(e.cfg.Claims.Type), Measurement: e.cfg.Claims.Measurement, Simulated: e.cfg.Claims.Simulated}
}
