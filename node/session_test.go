package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/internal/ml"
)

// TestQuerySessions queries a model through query sessions on a real node: a non-member cannot
// open one; answers open and match the signed query's; the clinic's limit of three queries
// holds across concurrent queries and a node restart (which drops sessions); a revocation
// refuses the very next query of an open session.
func TestQuerySessions(t *testing.T) {
	ctx := context.Background()
	w := newLifecycleWorld(t)
	w.add(t, "train", "predict")
	shares, test := wdbcShares(t, 1)
	p1 := w.upload(t, w.h1k, w.h1, "", shares[0])
	st := waitJob(t, w.h1, &api.JobSpec{Program: w.train, Inputs: map[string]string{"a": p1.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}, Params: json.RawMessage(`{"epochs": 10, "seed": 1}`)})
	mustDone(t, st)
	model := st.Outputs["model"]
	var q bytes.Buffer
	sub, _ := test.Project(test.Features)
	sub.WriteCSV(&q, ml.LabelColumn)

	mallory := w.n.client(t, newKey(t))
	if _, err := mallory.OpenQuerySession(ctx, model, w.pr); !errors.Is(err, api.ErrDenied) {
		t.Fatalf("a non-member opened a session: %v", err)
	}
	s, err := w.clinic.OpenQuerySession(ctx, model, w.pr)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Query(ctx, q.Bytes()) // use 1 of 3
	if err != nil || len(first) == 0 {
		t.Fatalf("first answer %q (%v)", first, err)
	}

	w.restart(t) // drops every session; the counters stay
	if _, err := s.Query(ctx, q.Bytes()); err == nil {
		t.Fatal("a session of the stopped node still answers")
	}
	s, err = w.clinic.OpenQuerySession(ctx, model, w.pr)
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ans, err := s.Query(ctx, q.Bytes())
			switch {
			case err == nil && bytes.Equal(ans, first):
				allowed.Add(1)
			case errors.Is(err, api.ErrDenied) && strings.Contains(err.Error(), "max_uses_per_party"):
			default:
				t.Errorf("query: %q %v", ans, err)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 2 {
		t.Fatalf("%d of 8 concurrent queries admitted after 1 before the restart, want 2 (limit 3)", n)
	}
	if _, err := w.clinic.Query(ctx, model, w.pr, q.Bytes()); !errors.Is(err, api.ErrDenied) {
		t.Fatalf("a signed query past the limit: %v", err)
	}

	if _, err := w.h1.Revoke(ctx, p1.ID, "consent withdrawn"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, q.Bytes()); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "consent withdrawn") {
		t.Fatalf("the next query of an open session after the revocation: %v", err)
	}
	w.n.Engine.FlushQueries(ctx)
	var allowedLogged, deniedLogged int
	for _, ev := range auditEvents(t, w.h1, model) {
		if ev.Kind == audit.KindQueryBatch {
			a, _ := strconv.Atoi(ev.Details["allowed"])
			d, _ := strconv.Atoi(ev.Details["denied"])
			allowedLogged, deniedLogged = allowedLogged+a, deniedLogged+d
		}
	}
	if allowedLogged != 3 || deniedLogged < 7 {
		t.Fatalf("the audit log counts %d allowed and %d denied queries, want 3 and at least 7", allowedLogged, deniedLogged)
	}
}
