package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// A chain is a Pad with every ancestor, as read from the store for one decision.
type chain struct {
	pad   *padRecord
	nodes map[string]*padRecord // the Pad and every ancestor, by id
	order []string              // breadth-first from the Pad
	pc    policy.Chain
	// revoked names the first revoked Pad of the chain (the Pad itself or an ancestor), if any.
	revoked    string
	revocation *api.Revocation
}

// loadChain reads a Pad's ancestry and the current policy of every sealed ancestor. It refuses
// chains wider than policy.MaxAncestors (an attacker-controlled amount of work).
func (e *Engine) loadChain(ctx context.Context, id string) (*chain, error) {
	return e.loadChainIn(ctx, nil, id)
}

// loadChainIn is loadChain taking from sn what it read ahead (admissionRefs).
func (e *Engine) loadChainIn(ctx context.Context, sn *store.Snapshot, id string) (*chain, error) {
	if !store.ValidKey(id) {
		return nil, errNoPad(id)
	}
	// The Pad's own revocation and policy are read alongside its record, not after it (for a
	// derived Pad, which has no policy of its own, that read finds nothing and is dropped).
	var rootState chainState
	var early sync.WaitGroup
	early.Go(func() { rootState.rv, rootState.rvErr = e.revocationIn(ctx, sn, id) })
	early.Go(func() { rootState.pol, _, rootState.polErr = e.currentPolicyIn(ctx, sn, id) })
	root, err := e.padRecordIn(ctx, sn, id)
	early.Wait()
	if err != nil {
		return nil, err
	}
	if !root.Deleted.IsZero() {
		return nil, api.Errorf(api.ErrNotFound, "Pad %s was deleted at %s (retention or revocation)", id, root.Deleted.Format("2006-01-02T15:04:05Z07:00"))
	}
	ch := &chain{pad: root, nodes: map[string]*padRecord{id: root}, order: []string{id}}
	dist := map[string]int{id: 0}
	// The records of a generation of ancestors are read at once, as the walk reaches it.
	var gen *store.Snapshot
	for i, next := 0, 0; i < len(ch.order); i++ {
		if i == next {
			gen, next = e.readParents(ctx, ch, ch.order[i:]), len(ch.order)
		}
		n := ch.nodes[ch.order[i]]
		for _, p := range n.Parents {
			if dist[p] < dist[n.ID]+1 {
				dist[p] = dist[n.ID] + 1
			}
			if _, seen := ch.nodes[p]; seen {
				continue
			}
			if len(ch.nodes) >= policy.MaxAncestors {
				return nil, fmt.Errorf("engine: Pad %s has more than %d ancestors", id, policy.MaxAncestors)
			}
			rec, err := e.padRecordIn(ctx, gen, p)
			if err != nil {
				return nil, fmt.Errorf("engine: ancestor %s of %s: %w", p, id, err)
			}
			ch.nodes[p] = rec
			ch.order = append(ch.order, p)
		}
	}
	if err := relaxDistances(ch, dist); err != nil {
		return nil, err
	}
	paths, err := pathKinds(ch, dist)
	if err != nil {
		return nil, err
	}
	ch.pc.Pad = e.padRef(root)
	// Every Pad's revocation and every sealed Pad's current policy are independent reads: make
	// them all at once, then take them in the chain's order (the first revoked Pad, the first
	// error, the sources) as one read after another would.
	states := make([]chainState, len(ch.order))
	states[0] = rootState
	var refs []store.Ref
	for _, pid := range ch.order[1:] {
		refs = append(refs, store.Ref{Bucket: store.Revocations, Key: pid})
		if !ch.nodes[pid].Derived {
			refs = append(refs, store.Ref{Bucket: store.Versions, Key: policyKey(pid)})
		}
	}
	anc := e.readAhead(ctx, refs)
	var wg sync.WaitGroup
	for i, pid := range ch.order[1:] {
		st := &states[i+1]
		wg.Go(func() { st.rv, st.rvErr = e.revocationIn(ctx, anc, pid) })
		if !ch.nodes[pid].Derived {
			wg.Go(func() { st.pol, _, st.polErr = e.currentPolicyIn(ctx, anc, pid) })
		}
	}
	wg.Wait()
	for i, pid := range ch.order {
		st := states[i]
		if st.rvErr != nil {
			return nil, st.rvErr
		}
		if st.rv != nil && ch.revoked == "" {
			ch.revoked, ch.revocation = pid, st.rv
		}
		n := ch.nodes[pid]
		if n.Derived {
			continue
		}
		if st.polErr != nil {
			return nil, st.polErr
		}
		ch.pc.Sources = append(ch.pc.Sources, policy.Source{Pad: e.padRef(n), Policy: st.pol, Distance: dist[pid],
			FirstKinds: paths[pid].first.list(), LaterKinds: paths[pid].later.list()})
	}
	return ch, nil
}

// readParents reads at once the records of the parents of nodes that the chain does not hold
// yet, if they fit in one read and within policy.MaxAncestors (past it, the walk refuses the
// chain before reading them).
func (e *Engine) readParents(ctx context.Context, ch *chain, nodes []string) *store.Snapshot {
	var refs []store.Ref
	seen := map[string]bool{}
	for _, id := range nodes {
		for _, p := range ch.nodes[id].Parents {
			if ch.nodes[p] == nil && !seen[p] && store.ValidKey(p) {
				seen[p] = true
				refs = append(refs, store.Ref{Bucket: store.Pads, Key: p})
			}
		}
	}
	if len(ch.nodes)+len(refs) > policy.MaxAncestors {
		return nil
	}
	return e.readAhead(ctx, refs)
}

// readAhead reads refs at once (store.ReadMany) if there are several. It returns nil if there
// is one or none, too many for one read, or if the read fails: the reads are then made one by
// one, and whichever fails says so with its key.
func (e *Engine) readAhead(ctx context.Context, refs []store.Ref) *store.Snapshot {
	if len(refs) < 2 || e.noReadAhead {
		return nil
	}
	sn, err := e.st.ReadMany(ctx, refs)
	if err != nil {
		return nil
	}
	return sn
}

// chainState is what loadChain reads about one Pad of a chain besides its record.
type chainState struct {
	rv     *api.Revocation
	pol    *policy.Policy
	rvErr  error
	polErr error
}

// relaxDistances makes dist the longest derivation distance from the root to each ancestor
// (breadth-first order gives a first estimate; a DAG may need more passes). In a DAG of n Pads
// no path is longer than n-1 steps, so distances settle within n passes; still changing after
// that means the parent records form a cycle, which no derivation can make: tampered state.
func relaxDistances(ch *chain, dist map[string]int) error {
	for pass := 0; ; pass++ {
		changed := false
		for _, pid := range ch.order {
			for _, p := range ch.nodes[pid].Parents {
				if dist[p] < dist[pid]+1 {
					dist[p], changed = dist[pid]+1, true
				}
			}
		}
		if !changed {
			return nil
		}
		if pass > len(ch.order) {
			return fmt.Errorf("%w: the ancestry of %s has a cycle", errTamperedState, ch.pad.ID)
		}
	}
}

// kindSet is a set of output kinds, one bit per entry of policy.Kinds.
type kindSet uint8

func (s kindSet) list() []policy.Kind {
	var out []policy.Kind
	for i, k := range policy.Kinds {
		if s&(1<<i) != 0 {
			out = append(out, k)
		}
	}
	return out
}

// sourcePaths are the kinds on a sealed ancestor's derivation paths to the root (policy.Source).
type sourcePaths struct{ first, later kindSet }

// pathKinds returns, for every Pad of the chain, the kinds of its children in the chain (first) and
// of every Pad below those children (later): every derive rule they name governs the root
// (docs/policy.md §Derivation). Every Pad of the chain is an ancestor of the root, so each path
// down from it reaches the root; a child lies strictly closer to the root than its parent, so one
// pass in order of distance sees every child before its parents.
func pathKinds(ch *chain, dist map[string]int) (map[string]sourcePaths, error) {
	bit := map[string]kindSet{}
	for id, n := range ch.nodes {
		if !n.Derived {
			continue
		}
		i := slices.Index(policy.Kinds, policy.Kind(n.Kind))
		if i < 0 {
			return nil, fmt.Errorf("%w: derived Pad %s has unknown kind %q", errTamperedState, id, n.Kind)
		}
		bit[id] = 1 << i
	}
	order := slices.Clone(ch.order)
	slices.SortStableFunc(order, func(a, b string) int { return dist[a] - dist[b] })
	below := map[string]kindSet{} // kinds of the Pads strictly below a Pad, on its paths to the root
	out := map[string]sourcePaths{}
	for _, id := range order {
		for _, p := range ch.nodes[id].Parents {
			below[p] |= bit[id] | below[id]
			sp := out[p]
			sp.first |= bit[id]
			sp.later |= below[id]
			out[p] = sp
		}
	}
	return out, nil
}

func (e *Engine) padRef(r *padRecord) policy.PadRef {
	owner, _ := party.ParseID(r.Owner)
	return policy.PadRef{ID: r.ID, Kind: policy.Kind(r.Kind), Owner: owner, Depth: r.Depth}
}

// revocation returns Pad id's revocation, or nil if it has none.
func (e *Engine) revocation(ctx context.Context, id string) (*api.Revocation, error) {
	return e.revocationIn(ctx, nil, id)
}

// revocationIn is revocation reading from sn if it read it.
func (e *Engine) revocationIn(ctx context.Context, sn *store.Snapshot, id string) (*api.Revocation, error) {
	var rv api.Revocation
	if _, err := e.getJSONIn(ctx, sn, store.Revocations, id, &rv); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return &rv, nil
}

// currentPolicy returns the Pad's current policy and its version.
func (e *Engine) currentPolicy(ctx context.Context, id string) (*policy.Policy, uint64, error) {
	return e.currentPolicyIn(ctx, nil, id)
}

// currentPolicyIn is currentPolicy reading from sn if it read the policy's register.
func (e *Engine) currentPolicyIn(ctx context.Context, sn *store.Snapshot, id string) (*policy.Policy, uint64, error) {
	v, sealed, in, err := sn.Version(policyKey(id))
	if !in {
		v, sealed, err = e.st.Version(ctx, policyKey(id))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("engine: policy of %s: %w", id, err)
	}
	doc, err := e.box.open(store.Versions, policyKey(id), sealed)
	if err != nil {
		return nil, 0, err
	}
	pol, err := e.parsePolicy(doc)
	if err != nil {
		return nil, 0, fmt.Errorf("engine: stored policy of %s: %w", id, err)
	}
	if pol.Version() != v {
		return nil, 0, fmt.Errorf("%w: policy of %s has version %d in register %d", errTamperedState, id, pol.Version(), v)
	}
	return pol, v, nil
}

// parsePolicy parses a policy document, caching by digest (the SHA-256 of the exact bytes):
// documents are immutable, and parsing costs 25–50 decisions, so a chain's policies are parsed
// once per version, not once per request.
func (e *Engine) parsePolicy(doc []byte) (*policy.Policy, error) {
	digest := sha256.Sum256(doc)
	if cached, ok := e.policies.Load(digest); ok {
		return cached.(*policy.Policy), nil
	}
	pol, err := policy.Parse(doc)
	if err != nil {
		return nil, err
	}
	if pol.Digest() != digest {
		return nil, fmt.Errorf("engine: policy digest is not the SHA-256 of its document")
	}
	e.policies.Store(digest, pol)
	return pol, nil
}

// request is one decision to take on a chain.
type request struct {
	caller  party.ID
	action  policy.Action
	purpose string
	program string
	job     string
	output  *policy.OutputClaim
	own     map[string]uint64 // uses the job already holds, by counter key (see admit)
}

// decide evaluates req on ch with the counters as they are now (read only if a limit or a rule of
// the chain looks at them). A revoked chain is denied without consulting policies, with a
// reason naming the revoked Pad.
func (e *Engine) decide(ctx context.Context, ch *chain, r request) (policy.Decision, error) {
	d, _, err := e.decideRead(ctx, ch, r)
	return d, err
}

// decideRead is decide, also returning the counters it decided on (nil for a revoked chain).
func (e *Engine) decideRead(ctx context.Context, ch *chain, r request) (policy.Decision, policy.Uses, error) {
	if ch.revoked != "" {
		return revokedDecision(ch, r.action), nil, nil
	}
	uses := policy.Uses{}
	if ch.pc.NeedsUses(r.action) { // otherwise no limit or rule looks at them: read nothing
		var err error
		if uses, err = e.uses(ctx, ch.pad.ID, r.action, r.caller, r.own); err != nil {
			return policy.Decision{}, nil, err
		}
	}
	return e.decideWith(ch, r, uses), uses, nil
}

// decideWith evaluates r on a chain that is not revoked with the given counters.
func (e *Engine) decideWith(ch *chain, r request, uses policy.Uses) policy.Decision {
	return e.pol.Decide(&ch.pc, e.policyRequest(r, uses))
}

// policyRequest is the policy engine's request for r now, with the given counters: the one
// place the engine fills a policy.Request, so jobs, releases and queries decide alike.
func (e *Engine) policyRequest(r request, uses policy.Uses) *policy.Request {
	return &policy.Request{
		Principal: r.caller, Action: r.action, Now: e.now(), Purpose: r.purpose,
		Program: r.program, Job: r.job, TEE: e.claims, Output: r.output, Uses: uses,
	}
}

func revokedDecision(ch *chain, action policy.Action) policy.Decision {
	text := fmt.Sprintf("Pad %s was revoked by its owner at %s", ch.revoked, ch.revocation.Time.UTC().Format("2006-01-02T15:04:05Z"))
	if ch.revocation.Reason != "" {
		text += ": " + ch.revocation.Reason
	}
	if ch.revoked != ch.pad.ID {
		text = "ancestor " + text
	}
	return policy.Decision{Action: action, Pad: ch.pad.ID, Reasons: []policy.Reason{{
		Pad: ch.revoked, Rule: "revocation", Effect: policy.EffectDeny, Text: text,
	}}}
}

func counterKey(k policy.CounterKey) string {
	s := "c." + k.Pad + "." + string(k.Action)
	if !k.Party.IsZero() {
		s += "." + k.Party.String()
	}
	return s
}

// uses reads the counters a decision on pad for action by caller may look at, less the uses in
// own (a running job's own reservations).
func (e *Engine) uses(ctx context.Context, pad string, action policy.Action, caller party.ID, own map[string]uint64) (policy.Uses, error) {
	return e.usesIn(ctx, nil, pad, action, caller, own)
}

// usesKeys are the counters a decision on pad for action by caller may look at.
func usesKeys(pad string, action policy.Action, caller party.ID) [2]policy.CounterKey {
	return [2]policy.CounterKey{{Pad: pad, Action: action}, {Pad: pad, Action: action, Party: caller}}
}

// usesIn is uses reading from sn the counters it read.
func (e *Engine) usesIn(ctx context.Context, sn *store.Snapshot, pad string, action policy.Action, caller party.ID, own map[string]uint64) (policy.Uses, error) {
	keys := usesKeys(pad, action, caller)
	var n [2]uint64
	var errs [2]error
	var wg sync.WaitGroup
	for i, k := range keys {
		var in bool
		if n[i], in, errs[i] = sn.Counter(counterKey(k)); !in {
			wg.Go(func() { n[i], errs[i] = e.st.Counter(ctx, counterKey(k)) })
		}
	}
	wg.Wait()
	u := policy.Uses{}
	for i, k := range keys {
		if errs[i] != nil && !errors.Is(errs[i], store.ErrNotFound) {
			return nil, errs[i]
		}
		u[k] = n[i] - min(n[i], own[counterKey(k)])
	}
	return u, nil
}

// reserve takes one use of every counter the decision obliges, atomically per counter. A limit
// reached between decision and reservation denies; counters already taken stay taken
// (conservative: a use is never given back).
func (e *Engine) reserve(ctx context.Context, d *policy.Decision) error {
	for _, c := range d.Obligations.Counters {
		hit, err := e.reserveOne(ctx, c)
		if err != nil {
			return err
		}
		if hit {
			limitReached(d, c)
			return nil
		}
	}
	return nil
}

// reserveOne takes one use of counter c, and reports whether its limit was already reached
// (nothing taken then).
func (e *Engine) reserveOne(ctx context.Context, c policy.Counter) (limitHit bool, err error) {
	limit := c.Limit
	if limit == 0 {
		limit = math.MaxUint64
	}
	if _, err := e.st.Reserve(ctx, counterKey(c.Key), 1, limit); err != nil {
		if errors.Is(err, store.ErrLimitReached) {
			return true, nil
		}
		return false, fmt.Errorf("engine: reserve %s: %w", counterKey(c.Key), err)
	}
	return false, nil
}

// limitReached denies d because counter c reached its limit between decision and reservation:
// another request took the last use. The reason names the same rule a decision would have.
func limitReached(d *policy.Decision, c policy.Counter) {
	a := string(c.Key.Action)
	rule, text := "lifecycle.max_uses."+a, fmt.Sprintf("%s limit of %d reached", a, c.Limit)
	if !c.Key.Party.IsZero() {
		rule, text = "lifecycle.max_uses_per_party."+a, fmt.Sprintf("%s limit per party of %d reached by %s", a, c.Limit, c.Key.Party)
	}
	d.Allow = false
	d.Reasons = append(d.Reasons, policy.Reason{
		Pad: c.Key.Pad, Rule: rule, Effect: policy.EffectDeny,
		Text: fmt.Sprintf("%s (imposed by %s; the last use went to a concurrent request)", text, strings.Join(c.Sources, ", ")),
	})
}

// reasonLines renders a decision's reasons for API errors and audit events.
func reasonLines(d policy.Decision) []string {
	out := make([]string, 0, len(d.Reasons))
	for _, r := range d.Reasons {
		out = append(out, r.String())
	}
	return out
}

// deniedError turns a deny into the API's denied error with the reasons that denied it (the
// permits that other sources gave are in the audit log and in explain).
func deniedError(what string, d policy.Decision) error {
	var lines []string
	for _, r := range d.Reasons {
		if r.Effect != policy.EffectPermit {
			lines = append(lines, r.String())
		}
	}
	return api.Denied(what+" denied", lines...)
}
