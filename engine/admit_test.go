package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/styx-tee/styx/api"
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
