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
