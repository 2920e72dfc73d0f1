package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/internal/ml"
)

// evaluate has a consortium member query a model with the whole held-out test set (one query,
// counted like any other) and records the accuracy of its predictions.
func (s *story) evaluate(ctx context.Context, who, model string, into *float64) error {
	q := csvOf(s.data.test)
	return s.act(fmt.Sprintf("%s evaluates the model on %d held-out rows (one query)", who, s.data.test.Rows()), "allow", func() (string, error) {
		ans, err := s.parties[who].client.Query(ctx, model, s.predictSHA, q)
		if err != nil {
			return "", err
		}
		acc, err := accuracy(ans, s.data.test)
		if err != nil {
			return "", err
		}
		*into = acc
		return fmt.Sprintf("accuracy %.4f", acc), nil
	})
}

func accuracy(answer []byte, test *ml.Dataset) (float64, error) {
	var out struct {
		Predictions []ml.Prediction `json:"predictions"`
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		return 0, fmt.Errorf("answer: %w", err)
	}
	if len(out.Predictions) != test.Rows() {
		return 0, fmt.Errorf("answer has %d predictions for %d rows", len(out.Predictions), test.Rows())
	}
	right := 0
	for i, p := range out.Predictions {
		if p.Label == test.Labels[i] {
			right++
		}
	}
	return float64(right) / float64(test.Rows()), nil
}

// compare trains the same SVM centrally on the plaintext union in plain Go and checks the goal:
// the joint model reaches 0.95 and stays within one point of the central one.
func (s *story) compare() error {
	acc := &s.rep.Accuracy
	acc.TestRows = s.data.test.Rows()
	union, err := ml.Merge(s.data.train.Features, s.data.parts["hospital-a"], s.data.parts["hospital-b"], s.data.parts["hospital-c"])
	if err != nil {
		return err
	}
	curve, central, err := trainingCurve(union, s.data.test, s.opts.Epochs)
	if err != nil {
		return err
	}
	acc.Central = central
	acc.Goal = "joint ≥ 0.95 and within 0.01 of central"
	acc.Met = acc.Joint >= 0.95 && acc.Central-acc.Joint <= 0.01
	expect, got := "allow", "allow"
	if !acc.Met {
		got = "deny"
	}
	s.record(&Event{What: "the joint model meets the accuracy goal", Expect: expect, Got: got,
		Detail: fmt.Sprintf("Styx joint %.4f vs central plain Go %.4f on the same %d test rows (goal: %s)", acc.Joint, acc.Central, acc.TestRows, acc.Goal)})
	if s.opts.PlotPath != "" {
		if err := writePlot(s.opts.PlotPath, curve, acc.Joint); err != nil {
			return err
		}
		fmt.Fprintf(s.out, "          training curve written to %s\n", s.opts.PlotPath)
	}
	return nil
}

// trainingCurve trains centrally for 1…epochs epochs and returns the test accuracy after each,
// and the final one.
func trainingCurve(train, test *ml.Dataset, epochs int) ([]float64, float64, error) {
	var curve []float64
	for e := 1; e <= epochs; e++ {
		m, err := ml.Train(ml.Go{}, train, ml.Config{Epochs: e, Seed: 1}, nil)
		if err != nil {
			return nil, 0, err
		}
		a, err := m.Accuracy(test)
		if err != nil {
			return nil, 0, err
		}
		curve = append(curve, a)
	}
	return curve, curve[len(curve)-1], nil
}

// query: step 4.
func (s *story) query(ctx context.Context) error {
	s.begin("A clinic queries model v2 under the combined policy of four hospitals")
	clinic := s.parties["clinic"]
	row := csvOf(firstRows(s.data.test, 1))
	for i := 1; i <= 4; i++ {
		expect := "allow"
		if i == 4 {
			expect = "deny" // hospital-b allows 3 queries per querier; the strictest limit wins
		}
		if err := s.act(fmt.Sprintf("clinic query %d on model v2", i), expect, func() (string, error) {
			ans, err := clinic.client.Query(ctx, s.modelV2, s.predictSHA, row)
			return strings.TrimSpace(string(ans)), err
		}); err != nil {
			return err
		}
	}
	if err := s.act("an outsider queries model v2", "deny", func() (string, error) {
		_, err := s.parties["outsider"].client.Query(ctx, s.modelV2, s.predictSHA, row)
		return "", err
	}); err != nil {
		return err
	}
	s.node.Engine.FlushQueries(ctx)
	if err := s.act("hospital-a's audit view shows every query on models derived from its data", "allow", func() (string, error) {
		page, err := s.parties["hospital-a"].client.Audit(ctx, &api.AuditQuery{Pad: s.pads["hospital-a"], Limit: 1000})
		if err != nil {
			return "", err
		}
		allowed, denied := 0, 0
		for _, e := range page.Entries {
			ev, err := audit.ParseRecord(e.Record)
			if err != nil || ev.Kind != audit.KindQueryBatch {
				continue
			}
			var a, d int
			fmt.Sscan(ev.Details["allowed"], &a)
			fmt.Sscan(ev.Details["denied"], &d)
			allowed, denied = allowed+a, denied+d
		}
		if allowed != 5 || denied != 2 {
			return "", fmt.Errorf("audit shows %d allowed and %d denied queries, want 5 and 2", allowed, denied)
		}
		return fmt.Sprintf("%d allowed and %d denied queries in query.batch events", allowed, denied), nil
	}); err != nil {
		return err
	}
	s.end()
	return nil
}

func firstRows(d *ml.Dataset, n int) *ml.Dataset {
	f := len(d.Features)
	return &ml.Dataset{Features: d.Features, X: d.X[:n*f], Labels: d.Labels[:n]}
}

// revoke: step 5.
func (s *story) revoke(ctx context.Context) error {
	s.begin("Hospital B leaves: it revokes its Pad, and everything derived from it stops")
	if err := s.act("hospital-b revokes its share", "allow", func() (string, error) {
		res, err := s.parties["hospital-b"].client.Revoke(ctx, s.pads["hospital-b"], "leaving the consortium")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d descendants unusable; data keys destroyed for %s", len(res.Descendants), strings.Join(res.Shredded, ", ")), nil
	}); err != nil {
		return err
	}
	row := csvOf(firstRows(s.data.test, 1))
	for _, m := range []struct{ who, name, id string }{{"clinic", "v2", s.modelV2}, {"hospital-a", "v1", s.modelV1}} {
		if err := s.act(fmt.Sprintf("%s queries model %s", m.who, m.name), "deny", func() (string, error) {
			_, err := s.parties[m.who].client.Query(ctx, m.id, s.predictSHA, row)
			return "", err
		}); err != nil {
			return err
		}
	}
	s.end()
	return nil
}

// receipts: step 6.
func (s *story) receipts(ctx context.Context) error {
	s.begin("Every owner verifies its receipts offline and the log's consistency")
	pub := s.node.Cluster.Identity().SigningKey()
	for _, h := range []string{"hospital-a", "hospital-b", "hospital-c", "hospital-d"} {
		if err := s.act(h+" verifies the receipts of the jobs that used its data", "allow", func() (string, error) {
			return s.verifyReceipts(ctx, h, pub)
		}); err != nil {
			return err
		}
	}
	s.end()
	return nil
}

func (s *story) verifyReceipts(ctx context.Context, h string, pub []byte) (string, error) {
	c := s.parties[h].client
	page, err := c.Audit(ctx, &api.AuditQuery{Limit: 1000})
	if err != nil {
		return "", err
	}
	n := 0
	for _, e := range page.Entries {
		ev, err := audit.ParseRecord(e.Record)
		if err != nil || ev.Kind != audit.KindJobDone {
			continue
		}
		raw, err := c.Receipt(ctx, fmt.Sprint(e.Index))
		if err != nil {
			return "", err
		}
		r, err := audit.ParseReceipt(raw)
		if err != nil {
			return "", err
		}
		if _, _, err := r.Verify(pub); err != nil {
			return "", fmt.Errorf("receipt %d: %w", e.Index, err)
		}
		if !r.Claims.TEE.Simulated && s.rep.Simulated {
			return "", fmt.Errorf("receipt %d hides the simulated TEE", e.Index)
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("no receipts found")
	}
	dir, err := os.MkdirTemp("", "styx-head-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "last-head")
	first, err := c.AuditHead(ctx, 0)
	if err != nil {
		return "", err
	}
	if _, err := audit.AdvanceHead(path, pub, first.Signed, nil); err != nil {
		return "", err
	}
	s.node.Engine.FlushQueries(ctx)
	next, err := c.AuditHead(ctx, first.Size)
	if err != nil {
		return "", err
	}
	if _, err := audit.AdvanceHead(path, pub, next.Signed, proofOf(next.Proof)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d receipts verified with the cluster key alone; log head of size %d consistent", n, next.Size), nil
}

// summary prints the outcome.
func (s *story) summary() {
	a := s.rep.Accuracy
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nAccuracy on %d held-out rows: central plain Go %.4f · Styx joint (v1) %.4f · fine-tuned (v2) %.4f\n",
		a.TestRows, a.Central, a.Joint, a.FineTuned)
	if s.rep.OK {
		fmt.Fprintf(&b, "All %d steps ended as expected in %.1f s.", len(s.rep.Steps), s.rep.Seconds)
	} else {
		fmt.Fprintf(&b, "SOME OUTCOMES DIFFERED FROM THE EXPECTED ONES (marked ✗ above).")
	}
	if s.rep.Simulated {
		b.WriteString(" (Simulated TEE: development only.)")
	}
	fmt.Fprintln(s.out, b.String())
}
