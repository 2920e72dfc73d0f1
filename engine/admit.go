package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/store"
)

// An admission is the outcome of evaluating a job against every input's chain.
type admission struct {
	allowed   bool
	reserved  map[string]uint64 // counter key → uses this admission reserved (with reserve)
	inputs    []string          // input names, sorted
	chains    map[string]*chain // input name → chain
	decisions []inputDecision
}

type inputDecision struct {
	input string
	d     policy.Decision
	// What was decided, and on which counters (nil if none was read): redecide decides it
	// again on them.
	req  request
	uses policy.Uses
}

// admit evaluates a job: for every input, "use" with the job's purpose and program, and
// "derive" for every declared output kind. With reserve, it then takes one use of every counter
// the allowed decisions oblige. It never touches a data key.
//
// own holds the uses an admitted job reserved (jobRecord.Reserved): the re-checks of a running
// job decide with the counters as they were before its own reservation, so that a job admitted
// for the last use of a Pad is not then denied by that very use.
func (e *Engine) admit(ctx context.Context, caller party.ID, job string, spec *api.JobSpec, reserve bool, own map[string]uint64) (*admission, error) {
	a := &admission{allowed: true, chains: map[string]*chain{}}
	for name := range spec.Inputs {
		a.inputs = append(a.inputs, name)
	}
	sort.Strings(a.inputs)
	// Every input's chain and decisions take a few sequential store reads and depend on no
	// other input's: evaluate the inputs at once, then gather in name order.
	type evaluated struct {
		ch        *chain
		decisions []inputDecision
		err       error
	}
	// What the decisions will read first (each input's record, revocation and policy, and
	// the counters its last decisions needed) is read at once: one request per bucket.
	sn := e.readAhead(ctx, e.admissionRefs(caller, spec))
	evals := make([]evaluated, len(a.inputs))
	var wg sync.WaitGroup
	for i, name := range a.inputs {
		wg.Go(func() {
			ev := &evals[i]
			ev.ch, ev.decisions, ev.err = e.evaluateInput(ctx, sn, caller, job, spec, spec.Inputs[name], own)
			if ev.err != nil {
				ev.err = fmt.Errorf("input %s: %w", name, ev.err)
			}
		})
	}
	wg.Wait()
	for i, name := range a.inputs {
		ev := evals[i]
		if ev.err != nil { // the first input's error, as one after another would report
			return nil, ev.err
		}
		a.chains[name] = ev.ch
		for _, d := range ev.decisions {
			d.input = name
			a.decisions = append(a.decisions, d)
			a.allowed = a.allowed && d.d.Allow
		}
	}
	if reserve {
		if err := e.reserveAdmission(ctx, a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// redecide decides a's requests again, now, on a's chains and the counters a read: the
// decision a's reads would give if nothing was stored since they began, which the engine's
// epoch can tell (a revocation, policy update or retention deletion moves it). Only the
// clock has moved: an expiry since denies. The uses a reserved are in neither the counters
// it read nor the new decisions' (see admit's own). a itself is left as it was.
func (e *Engine) redecide(a *admission) *admission {
	b := &admission{allowed: true, reserved: a.reserved, inputs: a.inputs, chains: a.chains}
	for _, d := range a.decisions {
		if ch := a.chains[d.input]; ch.revoked == "" {
			d.d = e.decideWith(ch, d.req, d.uses)
		}
		b.decisions = append(b.decisions, d)
		b.allowed = b.allowed && d.d.Allow
	}
	return b
}

// admissionRefs lists what an admission's decisions read first, for store.ReadMany: every
// input Pad's record, revocation and policy, and the counters of each action whose last
// decision on that Pad needed them (usesHint). Ancestors are not known before the records are
// read; they are read as the chains are loaded. Ids that are no valid key are left out (the
// chain's load refuses them).
func (e *Engine) admissionRefs(caller party.ID, spec *api.JobSpec) []store.Ref {
	var refs []store.Ref
	actions := []policy.Action{policy.ActionUse}
	if len(spec.Outputs) > 0 {
		actions = append(actions, policy.ActionDerive)
	}
	for _, id := range spec.Inputs {
		if !store.ValidKey(id) {
			continue
		}
		refs = append(refs, store.Ref{Bucket: store.Pads, Key: id}, store.Ref{Bucket: store.Revocations, Key: id},
			store.Ref{Bucket: store.Versions, Key: policyKey(id)})
		for _, action := range actions {
			if e.usesNeeded(id, action) {
				for _, k := range usesKeys(id, action, caller) {
					refs = append(refs, store.Ref{Bucket: store.Counters, Key: counterKey(k)})
				}
			}
		}
	}
	return refs
}

// reserveAdmission takes the uses an allowed admission obliges (see reserveAll); a limit lost
// in between turns it into a deny.
func (e *Engine) reserveAdmission(ctx context.Context, a *admission) error {
	if !a.allowed {
		return nil
	}
	e.at("reserve")
	var err error
	if a.reserved, err = e.reserveAll(ctx, a.decisions); err != nil {
		return err
	}
	for _, d := range a.decisions {
		a.allowed = a.allowed && d.d.Allow
	}
	return nil
}

// evaluateInput loads the chain of input Pad id and decides "use" and "derive" for every
// declared output on it. The decisions it returns name no input.
func (e *Engine) evaluateInput(ctx context.Context, sn *store.Snapshot, caller party.ID, job string, spec *api.JobSpec, id string, own map[string]uint64) (*chain, []inputDecision, error) {
	base := request{caller: caller, purpose: spec.Purpose, program: spec.Program, job: job, own: own}
	reqs := []request{withAction(base, policy.ActionUse, nil)}
	for _, o := range spec.Outputs {
		// The output does not exist yet: its size and aggregation are checked by the output
		// pipeline, on the real thing.
		reqs = append(reqs, withAction(base, policy.ActionDerive, &policy.OutputClaim{Kind: policy.Kind(o.Kind), Pending: true}))
	}
	// The counters of an action are read alongside the chain if the Pad's last decision on it
	// needed them (usesHint): a job's re-checks and its last decision then take one round of
	// reads, not two. The decision still reads them only if the chain just loaded needs them.
	ahead := map[policy.Action]*usesRead{}
	for _, r := range reqs {
		if _, ok := ahead[r.action]; !ok && e.usesNeeded(id, r.action) {
			u := &usesRead{done: make(chan struct{})}
			go func() {
				defer close(u.done)
				u.uses, u.err = e.usesIn(ctx, sn, id, r.action, caller, own)
			}()
			ahead[r.action] = u
		}
	}
	ch, err := e.loadChainIn(ctx, sn, id)
	if err != nil {
		return nil, nil, err
	}
	// Each decision reads its own counters: take them at once.
	decisions := make([]inputDecision, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		need := ch.pc.NeedsUses(r.action)
		e.rememberUses(id, r.action, need)
		decisions[i].req = r
		if u := ahead[r.action]; u != nil && need && ch.revoked == "" {
			wg.Go(func() {
				<-u.done
				if errs[i] = u.err; u.err == nil {
					decisions[i].d, decisions[i].uses = e.decideWith(ch, r, u.uses), u.uses
				}
			})
			continue
		}
		wg.Go(func() { decisions[i].d, decisions[i].uses, errs[i] = e.decideRead(ctx, ch, r) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return ch, decisions, nil
}

// reserveAll takes one use of every counter the "use" decisions oblige, and of every limited
// counter the "derive" decisions oblige, all at once: each
// reservation is its own compare-and-set and waits on a durable write, so one after another
// they would add up. A reservation that finds its limit reached lost a race for the last use
// (the decisions saw every counter below its limit): it turns its decision into a deny. The
// other reservations, made at the same time, stay taken: a counter never goes backwards, so a
// job that loses such a race may consume one use of its other inputs (conservative: no limit
// is ever exceeded). A store error fails admission the same way, with what was taken kept.
//
// It returns the uses it took, by counter key.
func (e *Engine) reserveAll(ctx context.Context, decisions []inputDecision) (map[string]uint64, error) {
	type slot struct {
		d   *policy.Decision
		c   policy.Counter
		hit bool // the limit was reached
		err error
	}
	var slots []*slot
	for i := range decisions {
		d := &decisions[i].d
		for _, c := range d.Obligations.Counters {
			// Every use is counted. A derive (one per declared output) is counted where a
			// policy limits it: counting it everywhere would cost two more durable writes per
			// input and output of every job, for counters nothing reads.
			if d.Action == policy.ActionUse || (d.Action == policy.ActionDerive && c.Limit > 0) {
				slots = append(slots, &slot{d: d, c: c})
			}
		}
	}
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() { s.hit, s.err = e.reserveOne(ctx, s.c) })
	}
	wg.Wait()
	var errs []error
	taken := map[string]uint64{}
	for _, s := range slots {
		switch {
		case s.err != nil:
			errs = append(errs, s.err)
		case s.hit:
			limitReached(s.d, s.c)
		default:
			taken[counterKey(s.c.Key)]++
		}
	}
	return taken, errors.Join(errs...)
}

func withAction(r request, a policy.Action, out *policy.OutputClaim) request {
	r.action, r.output = a, out
	return r
}

// useDecision returns the "use" decision of an input.
func (a *admission) useDecision(input string) policy.Decision {
	for _, d := range a.decisions {
		if d.input == input && d.d.Action == policy.ActionUse {
			return d.d
		}
	}
	return policy.Decision{}
}

// reasons lists every non-permit reason, each prefixed with its input.
func (a *admission) reasons() []string {
	var out []string
	for _, d := range a.decisions {
		if d.d.Allow {
			continue
		}
		for _, r := range d.d.Reasons {
			if r.Effect != policy.EffectPermit {
				out = append(out, fmt.Sprintf("input %s (%s): %s", d.input, d.d.Action, r))
			}
		}
	}
	return out
}

// pads lists every Pad the admission looked at: inputs and their ancestors.
func (a *admission) pads() []string {
	seen := map[string]bool{}
	var out []string
	for _, name := range a.inputs {
		for _, id := range a.chains[name].order {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// explanation renders an admission per input and per policy-bearing ancestor.
func (a *admission) explanation() *api.Explanation {
	ex := &api.Explanation{Allowed: a.allowed}
	for _, d := range a.decisions {
		ch := a.chains[d.input]
		ex.Decisions = append(ex.Decisions, api.Decision{
			Pad: ch.pad.ID, Input: d.input, Action: string(d.d.Action), Allowed: d.d.Allow, Reasons: reasonLines(d.d),
		})
		for _, src := range ch.order {
			var lines []string
			ok := true
			for _, r := range d.d.Reasons {
				if r.Pad == src {
					lines = append(lines, r.String())
					ok = ok && r.Effect == policy.EffectPermit
				}
			}
			if src == ch.pad.ID || len(lines) == 0 {
				continue
			}
			ex.Decisions = append(ex.Decisions, api.Decision{
				Pad: src, Input: d.input, Via: viaPath(ch, src), Action: string(d.d.Action), Allowed: ok, Reasons: lines,
			})
		}
	}
	return ex
}

// viaPath returns one derivation path from the chain's Pad down to the ancestor id.
func viaPath(ch *chain, id string) []string {
	parent := map[string]string{}
	queue := []string{ch.pad.ID}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if n == id {
			break
		}
		for _, p := range ch.nodes[n].Parents {
			if _, ok := parent[p]; !ok && p != ch.pad.ID {
				parent[p] = n
				queue = append(queue, p)
			}
		}
	}
	path := []string{id}
	for n := id; n != ch.pad.ID; {
		p, ok := parent[n]
		if !ok {
			break
		}
		path = append([]string{p}, path...)
		n = p
	}
	return path
}

// reserveAndLog takes the uses an allowed admission obliges (reserveAdmission) and logs the
// admission in the transparency log, both at once: each waits on durable writes, and the log's
// entry depends on the reservations only when one of them loses the race for the last use of
// a Pad. The job is then logged as admitted, and denied in a second entry that says why. A
// denied admission is only logged. It returns once both are durable, and the admission says
// whether the job is still allowed.
func (e *Engine) reserveAndLog(ctx context.Context, caller party.ID, job string, spec *api.JobSpec, a *admission) error {
	if !a.allowed {
		return e.auditAdmission(ctx, caller, job, spec, a)
	}
	ev := e.admissionEvent(caller, job, spec, a) // before the reservations change a
	logged := make(chan error, 1)
	go func() {
		_, err := e.audit.Append(ctx, ev)
		logged <- err
	}()
	rerr := e.reserveAdmission(ctx, a)
	if err := <-logged; err != nil {
		return fmt.Errorf("engine: audit admission: %w", err)
	}
	switch {
	case rerr != nil:
		// The log says why the job it admitted will not run (a store failing now may fail
		// this entry too: rerr says what went wrong first).
		ev.Kind, ev.Reasons = audit.KindDeny, []string{"its uses could not be reserved: " + rerr.Error()}
		_, _ = e.audit.Append(ctx, ev)
		return rerr
	case !a.allowed:
		return e.auditAdmission(ctx, caller, job, spec, a)
	}
	return nil
}

// auditAdmission records an admission (admit or deny) in the transparency log.
func (e *Engine) auditAdmission(ctx context.Context, caller party.ID, job string, spec *api.JobSpec, a *admission) error {
	if _, err := e.audit.Append(ctx, e.admissionEvent(caller, job, spec, a)); err != nil {
		return fmt.Errorf("engine: audit admission: %w", err)
	}
	return nil
}

// admissionEvent is the log entry of an admission.
func (e *Engine) admissionEvent(caller party.ID, job string, spec *api.JobSpec, a *admission) audit.Event {
	ev := audit.Event{Kind: audit.KindAdmit, Actor: caller.String(), Job: job, Pads: a.pads(),
		Details: map[string]string{"program": spec.Program, "purpose": spec.Purpose, "outputs": outputsString(spec)}}
	if !a.allowed {
		ev.Kind, ev.Reasons = audit.KindDeny, a.reasons()
	} else {
		for _, d := range a.decisions {
			for _, r := range d.d.Reasons {
				ev.Reasons = append(ev.Reasons, fmt.Sprintf("input %s (%s): %s", d.input, d.d.Action, r))
			}
		}
	}
	if e.Simulated() {
		ev.Details["tee"] = "simulated"
	}
	return ev
}

func outputsString(spec *api.JobSpec) string {
	var parts []string
	for _, o := range spec.Outputs {
		parts = append(parts, o.Name+":"+o.Kind)
	}
	return strings.Join(parts, ",")
}

// usesRead is a read of a decision's counters made alongside its chain.
type usesRead struct {
	done chan struct{}
	uses policy.Uses
	err  error
}

// usesHintKey names a Pad and an action in Engine.usesHint.
type usesHintKey struct {
	pad    string
	action policy.Action
}

// maxUsesHints bounds Engine.usesHint: past it the hints are forgotten, and the next decisions
// read their counters after their chains until they are learnt again.
const maxUsesHints = 1 << 16

// rememberUses records whether a decision on pad for action needed its counters.
func (e *Engine) rememberUses(pad string, action policy.Action, need bool) {
	if _, loaded := e.usesHint.Swap(usesHintKey{pad, action}, need); !loaded && e.usesHints.Add(1) > maxUsesHints {
		e.usesHint.Clear()
		e.usesHints.Store(0)
	}
}

// usesNeeded reports whether the last decision on pad for action needed its counters.
func (e *Engine) usesNeeded(pad string, action policy.Action) bool {
	need, _ := e.usesHint.Load(usesHintKey{pad, action})
	return need == true
}
