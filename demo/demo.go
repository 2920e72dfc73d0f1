// Package demo runs the hospitals scenario (package examples/hospitals) on an in-process node:
// three hospitals seal their shares of the Wisconsin breast cancer data under their own
// policies, jointly train a linear SVM inside the sandbox, a fourth hospital joins and
// fine-tunes it, a clinic queries it within its limit, one hospital revokes, and every owner
// verifies its receipts offline against the node's attestation bundle. Run is what `styx demo`
// calls; every step records its policy decisions, timings and whether the outcome is the
// expected one (and, for a denial that must say why, whether its reasons do).
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/node"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

// Options configure a run.
type Options struct {
	// Out receives the story for people, and the progress of long steps; nil discards it.
	Out io.Writer
	// Terminal says Out is a terminal: progress is redrawn in place rather than printed as
	// plain lines.
	Terminal bool
	// Policies, if set, holds policy templates (hospital-a.yaml …) that replace the embedded
	// ones of package hospitals, to try the scenario with other rules; a template it lacks is
	// the embedded one. Outcomes are still checked against the story's expectations.
	Policies fs.FS
	// DataDir holds the node's state; empty means a temporary directory removed afterwards.
	DataDir string
	// PlotPath, if set, receives the training curve as a PNG.
	PlotPath string
	// Epochs of the joint training (default 40).
	Epochs int
}

// Report is the outcome of a run, for people (printed as it goes) and scripts (JSON).
type Report struct {
	Simulated bool      `json:"simulated_tee"`
	Cluster   string    `json:"cluster"`
	Steps     []*Step   `json:"steps"`
	Accuracy  Accuracy  `json:"accuracy"`
	Curve     Curve     `json:"training_curve"`
	OK        bool      `json:"ok"`
	Started   time.Time `json:"started"`
	Seconds   float64   `json:"seconds"`
}

// Accuracy compares the models on the held-out test set.
type Accuracy struct {
	TestRows  int     `json:"test_rows"`
	Central   float64 `json:"central_plain_go"` // the same training, centrally, on plaintext
	Joint     float64 `json:"joint_styx"`       // model v1, trained in Styx by three hospitals
	FineTuned float64 `json:"fine_tuned_styx"`  // model v2, fine-tuned by the fourth hospital
	Goal      string  `json:"goal"`             // what the joint model must reach
	Met       bool    `json:"met"`
}

// Step is one chapter of the story.
type Step struct {
	N      int      `json:"n"`
	Title  string   `json:"title"`
	Events []*Event `json:"events"`
	Millis float64  `json:"ms"`
	OK     bool     `json:"ok"`
}

// Event is one action with its policy outcome.
type Event struct {
	What    string   `json:"what"`
	Expect  string   `json:"expect"` // allow or deny
	Got     string   `json:"got"`
	Detail  string   `json:"detail,omitempty"`
	Reasons []string `json:"reasons,omitempty"`
	Want    string   `json:"want_reason,omitempty"` // text a reason of the expected outcome must contain
	// Decisions are the policy decisions behind the outcome, one line each, when shown.
	Decisions []string `json:"decisions,omitempty"`
	Millis    float64  `json:"ms"`
	OK        bool     `json:"ok"`
}

// Curve is the training curve of the joint training, per epoch: what the program reported from
// inside Styx through its log (released to the submitter under the hospitals' policies), and the
// same measure in the central plain-Go run.
type Curve struct {
	Styx    []EpochFit `json:"styx"`
	Central []EpochFit `json:"central_plain_go"`
}

// EpochFit is one point of a training curve: aggregates over every training row.
type EpochFit struct {
	Epoch     int     `json:"epoch"`
	Objective float64 `json:"objective"`      // L2-regularised mean hinge loss
	Accuracy  float64 `json:"train_accuracy"` // on the training rows
}

// Run runs the scenario. It returns an error only when the scenario could not run at all; an
// outcome that differs from the expected one is recorded in the report (Report.OK false).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Epochs <= 0 {
		opts.Epochs = 40
	}
	dir := opts.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "styx-demo-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	s := &story{opts: opts, rep: &Report{OK: true, Started: time.Now().UTC()}, out: opts.Out}
	if err := s.start(ctx, dir); err != nil {
		return nil, err
	}
	defer s.stop()
	for _, step := range []func(context.Context) error{s.seal, s.train, s.join, s.query, s.revoke, s.receipts} {
		if err := step(ctx); err != nil {
			return s.rep, err
		}
	}
	s.rep.Seconds = time.Since(s.rep.Started).Seconds()
	s.summary()
	return s.rep, nil
}

// JSON renders the report as indented JSON.
func (r *Report) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}

// story is the state of one run.
type story struct {
	opts   Options
	rep    *Report
	out    io.Writer
	node   *node.Node
	cancel context.CancelFunc
	done   chan error
	step   *Step
	t0     time.Time

	parties    map[string]*actor
	trainSHA   string // program hashes
	predictSHA string
	statsSHA   string
	pads       map[string]string // hospital → Pad id
	policies   map[string][]byte // hospital → the policy its Pad carries now
	modelV1    string
	modelV2    string
	jobs       []*api.JobStatus
	data       *shares
}

type actor struct {
	name    string
	key     *party.Key
	client  *api.Client
	cluster *party.Identity      // the cluster identity this party attested
	bundle  []byte               // the node's attestation bundle, as this party verified it
	ref     *tee.ReferenceValues // the reference values it verified it with
}

func (s *story) begin(title string) {
	s.step = &Step{N: len(s.rep.Steps) + 1, Title: title, OK: true}
	s.rep.Steps = append(s.rep.Steps, s.step)
	s.t0 = time.Now()
	fmt.Fprintf(s.out, "\n[%d/6] %s\n", s.step.N, title)
}

func (s *story) end() {
	s.step.Millis = ms(time.Since(s.t0))
}

// record adds an event to the current step and prints it. An event is as expected when its
// outcome is, and, if it names a reason it wants, one of its reasons contains it.
func (s *story) record(ev *Event) {
	ev.OK = ev.Expect == ev.Got && (ev.Want == "" || slices.ContainsFunc(ev.Reasons, func(r string) bool {
		return strings.Contains(r, ev.Want)
	}))
	if !ev.OK {
		s.step.OK, s.rep.OK = false, false
	}
	s.step.Events = append(s.step.Events, ev)
	mark := "✓"
	if !ev.OK {
		mark = "✗ UNEXPECTED"
		if ev.Expect == ev.Got {
			mark = fmt.Sprintf("✗ UNEXPECTED (no reason names %q)", ev.Want)
		}
	}
	if len(ev.Reasons) > 3 {
		ev.Reasons = append(ev.Reasons[:3:3], fmt.Sprintf("… and %d more reasons", len(ev.Reasons)-3))
	}
	fmt.Fprintf(s.out, "  %s %-5s %s (%.0f ms)\n", mark, ev.Got, ev.What, ev.Millis)
	if ev.Detail != "" {
		fmt.Fprintf(s.out, "          %s\n", ev.Detail)
	}
	for _, d := range ev.Decisions {
		fmt.Fprintf(s.out, "          - %s\n", d)
	}
	for _, r := range ev.Reasons {
		fmt.Fprintf(s.out, "          · %s\n", r)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
