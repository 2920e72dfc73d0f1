package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRun runs the whole scenario and checks every expected outcome, the accuracy goal, the
// simulated-TEE labelling, the JSON report and the plot.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	plot := filepath.Join(t.TempDir(), "curve.png")
	rep, err := Run(context.Background(), Options{Out: &out, PlotPath: plot})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !rep.OK {
		t.Fatalf("outcomes differ:\n%s", out.String())
	}
	if len(rep.Steps) != 6 {
		t.Fatalf("%d steps", len(rep.Steps))
	}
	c := rep.Curve
	if len(c.Styx) != 40 || len(c.Central) != 40 {
		t.Fatalf("training curves of %d (Styx) and %d (central) epochs", len(c.Styx), len(c.Central))
	}
	// The same training on the same rows: the curve Styx's program reported through its log
	// follows the central one (the kernels may round differently, not more).
	for i := range c.Styx {
		if d := c.Styx[i].Objective - c.Central[i].Objective; d > 1e-6 || d < -1e-6 {
			t.Fatalf("epoch %d: objective %v in Styx, %v centrally", i+1, c.Styx[i].Objective, c.Central[i].Objective)
		}
	}
	if !(c.Styx[39].Objective < c.Styx[0].Objective) {
		t.Fatalf("the objective did not fall: %+v", c.Styx)
	}
	a := rep.Accuracy
	if !a.Met || a.Joint < 0.95 || a.Central-a.Joint > 0.01 || a.FineTuned < 0.9 {
		t.Fatalf("accuracy: %+v", a)
	}
	if !rep.Simulated || !strings.Contains(out.String(), "SIMULATED") {
		t.Fatal("a simulated run does not say so")
	}
	var back Report
	if err := json.Unmarshal(rep.JSON(), &back); err != nil || len(back.Steps) != 6 {
		t.Fatalf("JSON report: %v", err)
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 100 {
		t.Fatalf("plot: %v", err)
	}
}

func TestOutcomeMismatchIsRecorded(t *testing.T) {
	s := &story{rep: &Report{OK: true}, out: &bytes.Buffer{}}
	s.begin("x")
	s.record(&Event{What: "y", Expect: "deny", Got: "allow"})
	if s.rep.OK || s.step.OK {
		t.Fatal("a differing outcome left the report OK")
	}
}

// TestWantedReason checks that a denial that must say why is unexpected when no reason does,
// even among reasons beyond the three printed.
func TestWantedReason(t *testing.T) {
	for _, tc := range []struct {
		reasons []string
		ok      bool
	}{
		{[]string{"a", "b", "c", "revoked pad X"}, true},
		{[]string{"query limit reached"}, false},
		{nil, false},
	} {
		s := &story{rep: &Report{OK: true}, out: &bytes.Buffer{}}
		s.begin("x")
		s.record(&Event{What: "y", Expect: "deny", Got: "deny", Want: "revoked pad X", Reasons: tc.reasons})
		if s.rep.OK != tc.ok {
			t.Errorf("reasons %q: ok %t, want %t", tc.reasons, s.rep.OK, tc.ok)
		}
	}
}

func TestParseCurve(t *testing.T) {
	log := "svmtrain: epoch 1 objective 0.5 train_accuracy 0.9\nother line\nsvmtrain: epoch 2 objective 0.25 train_accuracy 0.95\n"
	c, err := parseCurve([]byte(log))
	if err != nil || len(c) != 2 || c[1] != (EpochFit{2, 0.25, 0.95}) {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := parseCurve([]byte("svmtrain: epoch 2 objective 0.5 train_accuracy 0.9\n")); err == nil {
		t.Fatal("a curve missing epoch 1 was accepted")
	}
}

// TestProgress checks both renderings: in place on a terminal, and on a pipe plain lines only
// once the wait is long, then on a change of state or every few seconds.
func TestProgress(t *testing.T) {
	var term bytes.Buffer
	p := &progress{out: &term, terminal: true, label: "job j", lastLine: -1}
	p.show(200*time.Millisecond, "running")
	p.clear()
	if got := term.String(); got != "\r\033[K    … job j: running, 0.2 s\r\033[K" {
		t.Fatalf("terminal: %q", got)
	}
	var plain bytes.Buffer
	p = &progress{out: &plain, label: "job j", lastLine: -1}
	for _, st := range []struct {
		at    time.Duration
		state string
	}{{200 * time.Millisecond, "queued"}, {1200 * time.Millisecond, "running"}, {1400 * time.Millisecond, "running"},
		{2 * time.Second, "sealing"}, {6 * time.Second, "sealing"}, {7200 * time.Millisecond, "sealing"}} {
		p.show(st.at, st.state)
	}
	p.clear()
	want := "    … job j: running, 1.2 s\n    … job j: sealing, 2.0 s\n    … job j: sealing, 7.2 s\n"
	if plain.String() != want {
		t.Fatalf("plain:\n%s\nwant:\n%s", plain.String(), want)
	}
}
