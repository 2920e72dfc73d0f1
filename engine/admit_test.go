package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/policy"
)

// TestUsesHintOnlyMovesReads: the counters are read alongside a chain when the Pad's last
// decision needed them, but what decides is the chain just loaded. A use limit added by an
// update after decisions that needed no counter is enforced; once an update lifts it, the
// counters read ahead on the old hint no longer deny.
func TestUsesHintOnlyMovesReads(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "")
	submit := func() error {
		_, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
			Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
		return err
	}
	if err := submit(); err != nil {
		t.Fatal(err)
	}
	if e.usesNeeded(w.pad, policy.ActionUse) {
		t.Fatal("a policy without limits left a hint to read its counters")
	}
	w.update(t, "2", "lifecycle: {max_uses: {use: 1}}")
	if err := submit(); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "lifecycle.max_uses.use") {
		t.Fatalf("second use under a limit of one added by an update: %v", err)
	}
	if !e.usesNeeded(w.pad, policy.ActionUse) {
		t.Fatal("a decision under a use limit left no hint to read its counters")
	}
	w.update(t, "3", "")
	if err := submit(); err != nil {
		t.Fatalf("use once the limit is lifted: %v", err)
	}
}

// TestUsesHintsBounded: the hints are forgotten past maxUsesHints Pads and actions, so that
// deciding on many Pads does not grow the engine without bound.
func TestUsesHintsBounded(t *testing.T) {
	e := newTestEngine(t)
	for i := range maxUsesHints + 10 {
		e.rememberUses(fmt.Sprintf("pad-%d", i), policy.ActionUse, true)
	}
	n := 0
	e.usesHint.Range(func(any, any) bool { n++; return true })
	if n > maxUsesHints || n == 0 {
		t.Fatalf("%d hints kept, want between 1 and %d", n, maxUsesHints)
	}
	if !e.usesNeeded(fmt.Sprintf("pad-%d", maxUsesHints+9), policy.ActionUse) {
		t.Fatal("the latest hint was forgotten")
	}
}

// TestReadAheadLoadsTheSameChain: a chain and an admission read at once (store.ReadMany: the
// inputs, then each generation of ancestors) are those read one record at a time, for a Pad
// derived in two stages from three Pads, one of them its parent's parent too (a diamond), one
// revoked, and an input whose counters are read ahead.
func TestReadAheadLoadsTheSameChain(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {use: 100}}")
	// Aggregates derived from these may be used and derived from again.
	reusable := func() []byte {
		return bytes.Replace(ownerPolicy(w.owner, "1", ""), []byte(`action == Styx::Action::"release"`),
			[]byte(`action in [Styx::Action::"use", Styx::Action::"derive", Styx::Action::"release"]`), 1)
	}
	other, third := w.uploadWith(t, reusable()), w.uploadWith(t, reusable())
	runOn := func(inputs map[string]string) string {
		t.Helper()
		st, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: inputs,
			Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.runJob(ctx, st.ID); err != nil {
			t.Fatal(err)
		}
		rec, err := e.jobRecord(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status.State != api.JobDone {
			t.Fatalf("job %s: %s %v", st.ID, rec.Status.State, rec.Status.Error)
		}
		return rec.Status.Outputs["count"]
	}
	first := runOn(map[string]string{"a": third, "b": other})
	second := runOn(map[string]string{"d": first, "c": third})
	if _, err := e.Revoke(ctx, w.owner.Identity(), api.SignRevocation(w.owner, other, "withdrawn", e.now())); err != nil {
		t.Fatal(err)
	}
	spec := &api.JobSpec{Program: w.prog, Inputs: map[string]string{"x": second, "y": w.pad}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}}
	load := func(readAhead bool) (*chain, *admission) {
		t.Helper()
		e.noReadAhead = !readAhead
		ch, err := e.loadChain(ctx, second)
		if err != nil {
			t.Fatal(err)
		}
		a, err := e.admit(ctx, w.owner.Identity().ID(), "job", spec, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ch, a
	}
	one, oneAdm := load(false)
	many, manyAdm := load(true)
	if len(many.order) != 4 || many.revoked != other {
		t.Fatalf("chain of %s: order %v, revoked %q; want four Pads, %s revoked", second, many.order, many.revoked, other)
	}
	if !e.usesNeeded(w.pad, policy.ActionUse) {
		t.Fatal("no counters were read ahead")
	}
	if !reflect.DeepEqual(one, many) {
		t.Errorf("chain read at once differs:\n%+v\none by one:\n%+v", many, one)
	}
	if !reflect.DeepEqual(oneAdm, manyAdm) {
		t.Errorf("admission read at once differs:\n%+v\none by one:\n%+v", manyAdm, oneAdm)
	}
	if manyAdm.allowed {
		t.Error("admitted a job on a Pad with a revoked ancestor")
	}
}

// TestRaceLostLoggedAsDenied: the admission is logged while the uses are reserved; a job that
// then loses the race for a Pad's last use is logged as admitted, then as denied with the
// limit, and is not run.
func TestRaceLostLoggedAsDenied(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	w := newWorld(t, e, "lifecycle: {max_uses: {use: 1}}")
	e.hook = func(stage string) {
		if stage == "reserve" { // another request takes the last use
			if _, err := e.st.Reserve(ctx, counterKey(policy.CounterKey{Pad: w.pad, Action: policy.ActionUse}), 1, 1); err != nil {
				t.Errorf("racing reservation: %v", err)
			}
		}
	}
	from := e.audit.Size()
	_, err := e.SubmitJob(ctx, w.owner.Identity(), &api.JobSpec{Program: w.prog, Inputs: map[string]string{"in": w.pad},
		Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	if !errors.Is(err, api.ErrDenied) {
		t.Fatalf("job that lost the race: %v", err)
	}
	entries, _, err := e.audit.Query(ctx, from, 0, func(ev *audit.Event) bool { return ev.Job != "" })
	if err != nil {
		t.Fatal(err)
	}
	var kinds []audit.Kind
	for _, en := range entries {
		kinds = append(kinds, en.Event.Kind)
	}
	if !slices.Equal(kinds, []audit.Kind{audit.KindAdmit, audit.KindDeny}) {
		t.Fatalf("logged %v, want admit then deny", kinds)
	}
	if r := strings.Join(entries[1].Event.Reasons, "; "); !strings.Contains(r, "lifecycle.max_uses.use") {
		t.Fatalf("the denial says %q", r)
	}
	if entries[0].Event.Job != entries[1].Event.Job {
		t.Fatalf("admit and deny name jobs %s and %s", entries[0].Event.Job, entries[1].Event.Job)
	}
}
