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
// The watchdog stopped with the program, so the job is first decided again (lastDecision: on
// chains read now, or on the chains the job started on if the engine's epoch shows nothing
// stored since they were read, less than chainTTL ago): a revocation, policy update or expiry
// of the program's last instants denies it here. A revocation stored after this decision but
// before the derived Pads' records exist would be cascaded without them; so once they exist,
// with their keys and blobs, every input ancestor is checked for revocation again, and if one
// was revoked the outputs are destroyed. Whichever order a revocation and the sealing take, no
// live descendant of a revoked Pad remains. A denial is an *abortError.
//
// While that decision is taken, the outputs are sealed ahead on the chains the job started
// with, and the writes of their keys and blobs begun (sealAhead). Once the decision allows
// them, their records are written while those writes end: each waits on a durable write. A
// crash before the job's final record leaves a record whose key may be missing, but the job
// is then found interrupted and everything it sealed destroyed (runFrom). What the decision or
// the output checks refuse is destroyed; an output whose parents' policies changed meanwhile
// is sealed again.
func (e *Engine) outputPipeline(ctx context.Context, caller *party.Identity, st *api.JobStatus, h *jobHost) (map[string]string, string, error) {
	h.attachLogs()
	for _, c := range h.outs {
		c.Close()
		if len(c.from) == 0 {
			c.from = slices.Clone(h.adm.inputs) // wrote before reading anything: derive from all inputs (conservative)
		}
	}
	ahead := make(chan []*sealedOutput, 1)
	go func() { ahead <- e.sealAhead(ctx, h, h.adm) }()
	adm, err := h.lastDecision(ctx)
	sealed := <-ahead // sealed; their keys and blobs may still be being written
	keep := false
	defer func() {
		if !keep {
			e.dropSealed(context.WithoutCancel(ctx), sealed)
		}
	}()
	if err != nil {
		return nil, "", err
	}
	if !adm.allowed {
		return nil, "", &abortError{reasons: adm.reasons()}
	}
	h.adm = adm
	for _, c := range h.outs {
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
	for i, c := range h.outs {
		s := sealed[i]
		if s.err != nil || !s.sealedOn(adm, c, h.aggregation(c)) {
			// Sealing ahead failed, a parent's policy changed since the job started, or the
			// program read more rows after it closed the output: the output is sealed again
			// on the chains just decided.
			e.dropSealed(context.WithoutCancel(ctx), sealed[i:i+1])
			if s = e.sealOutput(h, adm, c, h.aggregation(c)); s.err == nil {
				s.err = s.write(ctx, e)
			}
			sealed[i] = s
			if s.err != nil {
				return nil, "", s.err
			}
		}
	}
	err = e.createRecords(ctx, sealed)
	for _, s := range sealed {
		err = errors.Join(err, s.wait())
	}
	if err != nil {
		return nil, "", err // the records made are marked deleted by the caller (discardOutputs)
	}
	keep = true
	for _, s := range sealed {
		outs[s.c.name] = s.rec.ID
		claims.Outputs = append(claims.Outputs, audit.PadRef{Pad: s.rec.ID, Policy: s.rec.PolicyDigest})
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
	// The use of the inputs and the job's receipt go to the log in one durable write. No head
	// is signed for it here: the receipt is issued, under a head signed then, when a party
	// fetches it (styx receipt).
	use := audit.Event{Kind: audit.KindUse, Actor: caller.ID().String(), Job: st.ID,
		Pads: padsOf(h), Details: map[string]string{"program": st.Spec.Program}}
	index, err := e.audit.LogReceipt(ctx, claims, caller.ID().String(), details, use)
	if err != nil {
		return nil, "", fmt.Errorf("engine: receipt: %w", err)
	}
	return outs, strconv.FormatInt(index, 10), nil
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
	var refs []store.Ref
	for _, p := range probes {
		refs = append(refs, store.Ref{Bucket: store.Revocations, Key: p.id})
	}
	sn := e.readAhead(ctx, refs) // in one read where they fit in one
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Go(func() { p.rv, p.err = e.revocationIn(ctx, sn, p.id) })
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

// sealedOutput is one output sealed as a derived Pad: its key and blob, and the record that,
// once stored, makes the Pad exist.
type sealedOutput struct {
	c       *capture
	rec     *padRecord
	parents []audit.PadRef // the parents and their policies it was sealed on
	dk      *pad.DataKey
	blob    bytes.Buffer
	written bool // key and blob are stored
	err     error

	wrote chan struct{} // closed when the write writeAhead began ends (nil: none began)
	werr  error         // that write's error
}

// sealAhead seals every output on the chains of adm, all at once, and begins the writes of
// their keys and blobs (writeAhead); an output sealed when the program closed it (sealEarly) is
// taken as it is. An output that fails to seal carries its error.
func (e *Engine) sealAhead(ctx context.Context, h *jobHost, adm *admission) []*sealedOutput {
	out := make([]*sealedOutput, len(h.outs))
	var wg sync.WaitGroup
	for i, c := range h.outs {
		if c.early != nil && !c.taken {
			c.taken = true
			wg.Go(func() { out[i] = <-c.early })
			continue
		}
		wg.Go(func() {
			s := e.sealOutput(h, adm, c, h.aggregation(c))
			if s.err == nil {
				s.writeAhead(ctx, e)
			}
			out[i] = s
		})
	}
	wg.Wait()
	return out
}

// sealEarly seals output c as soon as the program has closed it, on the chains the job started
// on, and begins the writes of its key and blob (writeAhead): the rest of the program's run
// and the last decision no longer wait for them. Nothing is sealed for a guest whose job has
// not started (booted ahead, not yet claimed) or was not allowed. It runs on the program's
// goroutine, so the rows read so far are read here; the output pipeline seals again an output
// whose inputs were read further after it was closed, or whose parents' policies changed.
func (h *jobHost) sealEarly(c *capture) {
	select {
	case <-h.ready:
	default:
		return
	}
	if h.startErr != nil || h.adm == nil || !h.adm.allowed {
		return
	}
	if len(c.from) == 0 {
		c.from = slices.Clone(h.adm.inputs) // as the output pipeline does (conservative)
	}
	adm, rows := h.adm, h.aggregation(c)
	c.early = make(chan *sealedOutput, 1)
	h.e.at("sealing early")
	go func() {
		s := h.e.sealOutput(h, adm, c, rows)
		if s.err == nil {
			s.err = h.claim.wait() // nothing is written before the job's claim holds
		}
		if s.err == nil {
			s.writeAhead(context.WithoutCancel(h.ctx), h.e)
		}
		c.early <- s
	}()
}

// dropEarly destroys what sealEarly sealed and the output pipeline did not take: the outputs
// of a job that failed, was aborted or did not start.
func (h *jobHost) dropEarly(ctx context.Context) {
	for _, c := range h.outs {
		if c.early != nil && !c.taken {
			c.taken = true
			h.e.dropSealed(ctx, []*sealedOutput{<-c.early})
		}
	}
}

// aggregation is the aggregation an output's record states: for an aggregate, the fewest data
// rows read from the inputs that flowed into it; 0 otherwise.
func (h *jobHost) aggregation(c *capture) int64 {
	if c.kind != string(policy.KindAggregate) {
		return 0
	}
	return h.fewestRows(c.from)
}

// writeAhead begins s.write in the background; wait waits for it to end.
func (s *sealedOutput) writeAhead(ctx context.Context, e *Engine) {
	s.wrote = make(chan struct{})
	go func() {
		defer close(s.wrote)
		s.werr = s.write(ctx, e)
	}()
}

// wait waits for the write writeAhead began, if any, and returns its error.
func (s *sealedOutput) wait() error {
	if s.wrote == nil {
		return nil
	}
	<-s.wrote
	return s.werr
}

// parentsOf returns the parents of an output derived from the inputs from, on adm's chains.
func parentsOf(adm *admission, from []string) (refs []audit.PadRef, parents []pad.ParentRef, depth int, err error) {
	for _, name := range from {
		ch := adm.chains[name]
		policyHex := ch.policyDigest()
		digest, err := hex.DecodeString(policyHex)
		if err != nil || len(digest) != 32 {
			return nil, nil, 0, fmt.Errorf("%w: policy digest of %s", errTamperedState, ch.pad.ID)
		}
		id, err := pad.ParseID(ch.pad.ID)
		if err != nil {
			return nil, nil, 0, err
		}
		parents = append(parents, pad.ParentRef{ID: id, PolicyDigest: [32]byte(digest)})
		refs = append(refs, audit.PadRef{Pad: ch.pad.ID, Policy: policyHex})
		depth = max(depth, ch.pad.Depth+1)
	}
	return refs, parents, depth, nil
}

// sealedOn reports whether s was sealed on the same parents and policies as adm's chains give,
// with the given aggregation.
func (s *sealedOutput) sealedOn(adm *admission, c *capture, aggregation int64) bool {
	refs, _, depth, err := parentsOf(adm, c.from)
	return err == nil && depth == s.rec.Depth && slices.Equal(refs, s.parents) && s.rec.Aggregation == aggregation
}

// sealOutput seals one output of h's job as a derived Pad on adm's chains, stating aggregation:
// signed by the cluster, no key wraps, its data key to be kept only in the node's sealed key
// store (so that revocation can destroy it). Nothing is stored.
func (e *Engine) sealOutput(h *jobHost, adm *admission, c *capture, aggregation int64) *sealedOutput {
	s := &sealedOutput{c: c}
	doc := derivedDoc{Derived: 1, Kind: c.kind, Job: h.job, Program: h.spec.Program, Submitter: h.caller.String(), TEE: e.auditTEE(),
		Note: "effective policy: the current policy of every sealed ancestor, refined by its derive rule for this kind"}
	if e.Simulated() {
		doc.Simulated = &simulatedWarning{Warning: "derived on a SIMULATED TEE: no hardware protection"}
	}
	var parents []pad.ParentRef
	var depth int
	if doc.Parents, parents, depth, s.err = parentsOf(adm, c.from); s.err != nil {
		return s
	}
	s.parents = doc.Parents
	docBytes, _ := json.Marshal(doc)
	s.dk = pad.NewDataKey()
	hdr, err := pad.Seal(&s.blob, bytes.NewReader(c.buf.Bytes()), pad.SealOptions{
		Signer: e.cfg.Cluster, Policy: docBytes, PolicyType: DerivedPolicyType, ContentType: contentTypeOf(c.kind),
		Parents: parents, DataKey: s.dk, Size: int64(c.buf.Len()), CreatedAt: e.now(),
	})
	if err != nil {
		s.err = fmt.Errorf("engine: seal output %s: %w", c.name, err)
		return s
	}
	d := hdr.PolicyDigest()
	parentIDs := make([]string, len(doc.Parents))
	for i, p := range doc.Parents {
		parentIDs[i] = p.Pad
	}
	s.rec = &padRecord{
		ID: hdr.ID.String(), Owner: h.caller.String(), Signer: e.cfg.Cluster.Identity().ID().String(), Derived: true,
		Kind: c.kind, Parents: parentIDs, Job: h.job, Program: h.spec.Program, ContentType: hdr.ContentType,
		Size: hdr.Size, SealedSize: int64(s.blob.Len()), Depth: depth, PolicyDigest: hex.EncodeToString(d[:]),
		Created: e.now().UTC(), Simulated: e.Simulated(), Aggregation: aggregation,
	}
	return s
}

// write stores the output's key and blob, at once (each waits on its own durable write).
// Without the record neither makes a Pad exist: a crash leaves at most an unreachable key or
// blob, never a Pad without its key.
func (s *sealedOutput) write(ctx context.Context, e *Engine) error {
	s.written = true // possibly in part: dropSealed removes what there is
	var keyErr error
	var wg sync.WaitGroup
	wg.Go(func() { keyErr = e.putDataKey(ctx, s.rec.ID, s.dk) })
	_, blobErr := e.blobs.Put(ctx, padBlob(s.rec.ID), bytes.NewReader(s.blob.Bytes()))
	wg.Wait()
	return errors.Join(keyErr, blobErr)
}

// createRecords stores the records of sealed outputs, at once: the derived Pads exist.
func (e *Engine) createRecords(ctx context.Context, sealed []*sealedOutput) error {
	errs := make([]error, len(sealed))
	var wg sync.WaitGroup
	for i, s := range sealed {
		wg.Go(func() { errs[i] = e.createJSON(ctx, store.Pads, s.rec.ID, s.rec) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// dropSealed destroys the keys and blobs of outputs sealed but not kept. A key or blob that
// cannot be removed is unreachable anyway (no record names it): it is logged.
func (e *Engine) dropSealed(ctx context.Context, sealed []*sealedOutput) {
	for _, s := range sealed {
		if s != nil {
			s.wait() // its error is moot: what was written is removed
		}
		if s == nil || !s.written {
			continue
		}
		s.written = false
		if err := e.shred(ctx, s.rec.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("destroy the key of an output not kept", "pad", s.rec.ID, "err", err)
		}
		if err := e.blobs.Delete(ctx, padBlob(s.rec.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("delete the blob of an output not kept", "pad", s.rec.ID, "err", err)
		}
	}
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
