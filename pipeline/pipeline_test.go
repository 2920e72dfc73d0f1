package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/styx-tee/styx/api"
)

const sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

var valid = `pipeline: train-then-tune
purpose: cancer-research
stages:
  - name: tune
    program: ` + sha + `
    inputs: {model: train.model, d: styxpad1dddd}
    outputs: [model:model]
  - name: train
    program: ` + sha + `
    inputs: {a: styxpad1aaaa, b: styxpad1bbbb}
    outputs: [model:model, log:log]
    params: {epochs: 40}
`

func TestParseOrdersStages(t *testing.T) {
	m, err := Parse([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range m.Order() {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "train,tune" {
		t.Fatalf("order %v", names)
	}
	if m.Order()[1].Purpose != "cancer-research" {
		t.Fatal("default purpose not applied")
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"empty":          {"pipeline: x\n", "no stages"},
		"unknown field":  {"pipeline: x\nstagez: []\n", "stagez"},
		"duplicate":      {"stages:\n- {name: a, program: " + sha + ", purpose: p, inputs: {x: styxpad1a}, outputs: [o:model]}\n- {name: a, program: " + sha + ", purpose: p, inputs: {x: styxpad1a}, outputs: [o:model]}\n", "declared twice"},
		"bad name":       {"stages:\n- {name: A!, program: " + sha + "}\n", "name must match"},
		"unknown stage":  {"stages:\n- {name: a, program: " + sha + ", purpose: p, inputs: {x: b.o}, outputs: [o:model]}\n", `no stage "b"`},
		"unknown output": {"stages:\n- {name: a, program: " + sha + ", purpose: p, inputs: {x: b.nope}, outputs: [o:model]}\n- {name: b, program: " + sha + ", purpose: p, inputs: {x: styxpad1a}, outputs: [o:model]}\n", `declares no output "nope"`},
		"cycle":          {"stages:\n- {name: a, program: " + sha + ", purpose: p, inputs: {x: b.o}, outputs: [o:model]}\n- {name: b, program: " + sha + ", purpose: p, inputs: {x: a.o}, outputs: [o:model]}\n", "cycle"},
		"bad output":     {"stages:\n- {name: a, program: " + sha + ", purpose: p, inputs: {x: styxpad1a}, outputs: [nokind]}\n", "stage \"a\""},
		"not yaml":       {"{{{", "invalid"},
		"too large":      {strings.Repeat("#", MaxManifestSize+1), "more than"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	var many strings.Builder
	many.WriteString("stages:\n")
	for i := range MaxStages + 1 {
		fmt.Fprintf(&many, "- {name: s%d, program: %s, purpose: p, inputs: {x: styxpad1a}, outputs: [o:model]}\n", i, sha)
	}
	if _, err := Parse([]byte(many.String())); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many stages: %v", err)
	}
}

// recorder is a Submitter that completes every job at once, naming outputs after the stage,
// so Run's wiring of outputs into later stages can be checked. The engine's own behaviour is
// tested with the real node in package node.
type recorder struct {
	specs []*api.JobSpec
	fail  string // program of a job to deny
}

func (r *recorder) SubmitJob(ctx context.Context, spec *api.JobSpec) (*api.JobStatus, error) {
	r.specs = append(r.specs, spec)
	if spec.Inputs["deny"] != "" {
		return nil, api.Denied("job denied", "deny pad x rules: no")
	}
	outs := map[string]string{}
	for _, o := range spec.Outputs {
		outs[o.Name] = fmt.Sprintf("styxpad1out%d%s", len(r.specs), o.Name)
	}
	return &api.JobStatus{ID: fmt.Sprint(len(r.specs)), State: api.JobDone, Outputs: outs}, nil
}

func (r *recorder) WaitJob(ctx context.Context, id string) (*api.JobStatus, error) {
	return nil, errors.New("not reached")
}

func TestRunFeedsOutputsForward(t *testing.T) {
	m, _ := Parse([]byte(valid))
	r := &recorder{}
	res, err := m.Run(context.Background(), r, nil)
	if err != nil || !res.OK || len(res.Stages) != 2 {
		t.Fatalf("run: %+v %v", res, err)
	}
	if got := r.specs[1].Inputs["model"]; got != "styxpad1out1model" {
		t.Fatalf("tune got model %q", got)
	}
	if string(r.specs[0].Params) != `{"epochs":40}` {
		t.Fatalf("params %s", r.specs[0].Params)
	}
}

func TestRunStopsAtDenial(t *testing.T) {
	doc := strings.Replace(valid, "a: styxpad1aaaa", "deny: styxpad1aaaa", 1)
	m, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	res, err := m.Run(context.Background(), r, nil)
	if err != nil || res.OK || len(res.Stages) != 1 || !strings.Contains(res.Stages[0].Error, "denied") {
		t.Fatalf("run: %+v %v", res, err)
	}
	if len(r.specs) != 1 {
		t.Fatal("a stage after a denial ran")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("stages:\n- {name: a, program: x, inputs: {x: a.o}, outputs: [o:model]}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err == nil && len(m.Order()) != len(m.Stages) {
			t.Fatalf("order has %d of %d stages", len(m.Order()), len(m.Stages))
		}
	})
}
