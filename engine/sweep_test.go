package engine

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/store"
)

// offsetClock is real time plus an offset a test moves forward.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// deletions returns the Pads the log records as deleted.
func deletions(t *testing.T, e *Engine) []string {
	t.Helper()
	var out []string
	for i := range e.audit.Size() {
		en, err := e.audit.Read(i)
		if err != nil {
			t.Fatal(err)
		}
		if en.Event.Kind == audit.KindDelete {
			out = append(out, en.Event.Pads...)
		}
	}
	return out
}

// TestSweepKeepsPadWhoseKeySurvives makes destroying a derived Pad's key fail during a retention
// sweep: the Pad is neither marked deleted nor logged as deleted, its blob stays, the sweep says
// so, and the next sweep deletes it.
func TestSweepKeepsPadWhoseKeySurvives(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	clock := &offsetClock{}
	e.now = clock.now
	w := newWorld(t, e, "lifecycle: {retention: 1h}")
	var failing atomic.Bool
	e.failShred = func(id string) error {
		if failing.Load() {
			return errors.New("store unavailable")
		}
		return nil
	}
	st := w.runHere(t)
	if st.State != api.JobDone {
		t.Fatalf("job: %s %s", st.State, fmtAPIErr(st.Error))
	}
	agg := st.Outputs["count"]
	failing.Store(true)
	clock.advance(2 * time.Hour)
	got, err := e.SweepRetention(ctx)
	if err == nil || slices.Contains(got, agg) || !slices.Contains(got, w.pad) {
		t.Fatalf("sweep with the key store failing deleted %v (%v), want only %s and an error", got, err, w.pad)
	}
	rec, err := e.padRecord(ctx, agg)
	if err != nil || !rec.Deleted.IsZero() {
		t.Fatalf("aggregate whose key survived: %+v (%v), want not marked deleted", rec, err)
	}
	if slices.Contains(deletions(t, e), agg) {
		t.Fatal("the log says the aggregate was deleted while its key survives")
	}
	if _, err := e.dataKey(ctx, agg); err != nil {
		t.Fatalf("key of the aggregate: %v", err)
	}
	if _, err := e.blobs.Stat(ctx, padBlob(agg)); err != nil {
		t.Fatalf("blob of the aggregate: %v", err)
	}

	failing.Store(false)
	got, err = e.SweepRetention(ctx)
	if err != nil || !slices.Equal(got, []string{agg}) {
		t.Fatalf("next sweep deleted %v (%v), want %s", got, err, agg)
	}
	if _, err := e.dataKey(ctx, agg); !errors.Is(err, ErrShredded) {
		t.Fatalf("key after the retry: %v", err)
	}
	if !slices.Contains(deletions(t, e), agg) {
		t.Fatal("the retried deletion is not logged")
	}
}

// TestSweepClosesWarmModel deletes a model past its retention that has a warm query pool: the
// pool, which holds the model's plaintext in memory, is closed too.
func TestSweepClosesWarmModel(t *testing.T) {
	ctx := context.Background()
	e := newTestEngine(t)
	clock := &offsetClock{}
	e.now = clock.now
	w := newWorld(t, e, "lifecycle: {retention: 1h}")
	model := "model-a"
	putOutput(t, e, model, "job-x")
	if err := updateJSON(ctx, e, store.Pads, model, func(r *padRecord) error {
		r.Kind, r.Parents, r.Created = "model", []string{w.pad}, e.now().UTC()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wasm, err := wasmbuild.Build(ctx, "examples/programs/svmpredict", true)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := e.AddProgram(ctx, w.owner.Identity(), bytesReader(wasm), int64(len(wasm)))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.padRecord(ctx, model)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.queries.pool(ctx, rec, prog.SHA256, w.owner.Identity().ID()); err != nil {
		t.Fatal(err)
	}
	clock.advance(2 * time.Hour)
	got, err := e.SweepRetention(ctx)
	if err != nil || !slices.Contains(got, model) {
		t.Fatalf("sweep deleted %v (%v), want the model", got, err)
	}
	e.queries.mu.Lock()
	left := len(e.queries.pools)
	e.queries.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d warm pools of the deleted model left open", left)
	}
}
