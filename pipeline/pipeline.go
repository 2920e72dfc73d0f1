// Package pipeline runs a DAG of jobs declared in one YAML manifest: each stage is a job whose
// inputs are Pads or outputs of earlier stages. Intermediate outputs are derived Pads that stay
// inside the cluster (they are never released unless a policy allows and someone asks), and
// every stage is admitted against the policies of all its inputs' ancestors like any job.
//
// Parse a manifest with Parse, then Run it with a Submitter (the API client, or the engine).
package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/styx-tee/styx/api"
)

// Limits on manifests (they come from users, possibly from other parties).
const (
	MaxManifestSize = 64 << 10
	MaxStages       = 64
)

// ErrInvalid reports a manifest that does not parse or validate.
var ErrInvalid = errors.New("invalid pipeline manifest")

// Manifest is a parsed, validated pipeline.
type Manifest struct {
	Name    string   `yaml:"pipeline"`
	Purpose string   `yaml:"purpose"` // default purpose of every stage
	Stages  []*Stage `yaml:"stages"`
	order   []*Stage // topological order
}

// Stage is one job of a pipeline.
type Stage struct {
	Name    string            `yaml:"name"`
	Program string            `yaml:"program"`
	Purpose string            `yaml:"purpose"`
	Inputs  map[string]string `yaml:"inputs"`  // input name → Pad id, or "STAGE.OUTPUT"
	Outputs []string          `yaml:"outputs"` // "NAME:KIND"
	Params  map[string]any    `yaml:"params"`
	deps    []string
}

var stageName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// Parse parses and validates a manifest strictly: unknown fields, duplicate stages, references
// to unknown stages or outputs, and cycles are errors that say where.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxManifestSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if len(m.Stages) == 0 {
		return errors.New("no stages")
	}
	if len(m.Stages) > MaxStages {
		return fmt.Errorf("%d stages, more than %d", len(m.Stages), MaxStages)
	}
	outputs := map[string]map[string]bool{}
	for i, s := range m.Stages {
		if s == nil || !stageName.MatchString(s.Name) {
			return fmt.Errorf("stage %d: name must match %s", i+1, stageName)
		}
		if outputs[s.Name] != nil {
			return fmt.Errorf("stage %q is declared twice", s.Name)
		}
		if s.Purpose == "" {
			s.Purpose = m.Purpose
		}
		spec, err := s.spec(nil)
		if err != nil {
			return fmt.Errorf("stage %q: %v", s.Name, err)
		}
		outputs[s.Name] = map[string]bool{}
		for _, o := range spec.Outputs {
			outputs[s.Name][o.Name] = true
		}
	}
	for _, s := range m.Stages {
		for in, ref := range s.Inputs {
			st, out, ok := stageRef(ref)
			if !ok {
				continue
			}
			if outputs[st] == nil {
				return fmt.Errorf("stage %q input %q: no stage %q", s.Name, in, st)
			}
			if !outputs[st][out] {
				return fmt.Errorf("stage %q input %q: stage %q declares no output %q", s.Name, in, st, out)
			}
			s.deps = append(s.deps, st)
		}
		sort.Strings(s.deps)
	}
	return m.sortStages()
}

// stageRef splits "STAGE.OUTPUT"; Pad ids ("styxpad1…") contain no dot.
func stageRef(ref string) (stage, output string, ok bool) {
	stage, output, ok = strings.Cut(ref, ".")
	return stage, output, ok
}

// sortStages orders stages so every stage comes after the stages it reads, or finds a cycle.
func (m *Manifest) sortStages() error {
	byName := map[string]*Stage{}
	for _, s := range m.Stages {
		byName[s.Name] = s
	}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(s *Stage, path []string) error
	visit = func(s *Stage, path []string) error {
		switch state[s.Name] {
		case 1:
			return fmt.Errorf("stages form a cycle: %s", strings.Join(append(path, s.Name), " → "))
		case 2:
			return nil
		}
		state[s.Name] = 1
		for _, d := range s.deps {
			if err := visit(byName[d], append(path, s.Name)); err != nil {
				return err
			}
		}
		state[s.Name] = 2
		m.order = append(m.order, s)
		return nil
	}
	for _, s := range m.Stages {
		if err := visit(s, nil); err != nil {
			return err
		}
	}
	return nil
}

// spec builds the job of a stage, resolving stage references with produced (stage → output →
// Pad id); with produced nil, references are left as they are (validation only).
func (s *Stage) spec(produced map[string]map[string]string) (*api.JobSpec, error) {
	spec := &api.JobSpec{Program: s.Program, Purpose: s.Purpose, Inputs: map[string]string{}}
	for in, ref := range s.Inputs {
		if st, out, ok := stageRef(ref); ok && produced != nil {
			id := produced[st][out]
			if id == "" {
				return nil, fmt.Errorf("input %q: stage %q produced no %q", in, st, out)
			}
			ref = id
		}
		spec.Inputs[in] = ref
	}
	for _, o := range s.Outputs {
		os, err := api.ParseOutputSpec(o)
		if err != nil {
			return nil, err
		}
		spec.Outputs = append(spec.Outputs, os)
	}
	if len(s.Params) > 0 {
		p, err := json.Marshal(s.Params)
		if err != nil {
			return nil, fmt.Errorf("params: %v", err)
		}
		spec.Params = p
	}
	if produced == nil {
		// Validate with placeholder ids for stage references.
		v := *spec
		v.Inputs = map[string]string{}
		for in, ref := range spec.Inputs {
			if _, _, ok := stageRef(ref); ok {
				ref = "styxpad1placeholder"
			}
			v.Inputs[in] = ref
		}
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	return spec, nil
}

// Order returns the stages in the order Run runs them.
func (m *Manifest) Order() []*Stage { return m.order }

// A Submitter runs one job to its end (api.Client with Wait, or the engine).
type Submitter interface {
	SubmitJob(ctx context.Context, spec *api.JobSpec) (*api.JobStatus, error)
	WaitJob(ctx context.Context, id string) (*api.JobStatus, error)
}

// Result is the outcome of a run: each stage's final status, in run order.
type Result struct {
	Stages []StageResult `json:"stages"`
	OK     bool          `json:"ok"`
}

// StageResult is one stage's job.
type StageResult struct {
	Stage string         `json:"stage"`
	Job   *api.JobStatus `json:"job,omitempty"`
	Error string         `json:"error,omitempty"`
}

// Run runs the stages in order, feeding each stage's outputs to the stages that read them. It
// stops at the first stage that is denied or does not end done; the result says which and why.
func (m *Manifest) Run(ctx context.Context, sub Submitter, progress func(StageResult)) (*Result, error) {
	res := &Result{OK: true}
	produced := map[string]map[string]string{}
	for _, s := range m.order {
		sr := StageResult{Stage: s.Name}
		spec, err := s.spec(produced)
		if err == nil {
			spec.Wait = true
			sr.Job, err = sub.SubmitJob(ctx, spec)
			for err == nil && !sr.Job.State.Final() {
				sr.Job, err = sub.WaitJob(ctx, sr.Job.ID)
			}
		}
		switch {
		case err != nil:
			sr.Error = err.Error()
		case sr.Job.State != api.JobDone:
			sr.Error = fmt.Sprintf("job %s ended %s", sr.Job.ID, sr.Job.State)
			if sr.Job.Error != nil {
				sr.Error += ": " + sr.Job.Error.Error()
			}
		}
		res.Stages = append(res.Stages, sr)
		if progress != nil {
			progress(sr)
		}
		if sr.Error != "" {
			res.OK = false
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, nil
		}
		produced[s.Name] = sr.Job.Outputs
	}
	return res, nil
}
