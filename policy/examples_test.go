package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// The worked examples in examples/policies are real documents: each parses and lints clean.
func TestExamplesLintClean(t *testing.T) {
	files, _ := filepath.Glob("../examples/policies/*.yaml")
	if len(files) < 5 {
		t.Fatalf("want at least five example policies, found %d", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := Lint(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		for _, w := range ws {
			t.Errorf("%s: warning %s", f, w)
		}
	}
}

func loadExample(t *testing.T, name string) *Policy {
	t.Helper()
	data, err := os.ReadFile("../examples/policies/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHospitalScenario walks the hospitals story of docs/policy.md over the example policies.
func TestHospitalScenario(t *testing.T) {
	a, b, c, d := loadExample(t, "hospital-a"), loadExample(t, "hospital-b"), loadExample(t, "hospital-c"), loadExample(t, "hospital-d")
	member := func(p *Policy, group string, i int) party.ID { return p.Members(group)[i] }
	hospD, clinic := member(a, "consortium", 3), member(a, "clinics", 0)
	train := "60046ba2e7979eae05f652e8bbddcb2e148ce36645bf455c3c373b44620f0839"
	finetune := "c98b6558a276323836179ba5db408dbc7591595615170d558b4be6903456ffcd"
	now := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	tee := TEEClaims{Type: "tdx", TCB: 3}
	e := NewEngine()
	sealed := func(id string, p *Policy) *Chain {
		return &Chain{Pad: PadRef{ID: id, Owner: p.Owner()}, Sources: []Source{{Pad: PadRef{ID: id}, Policy: p}}}
	}
	// Step 1: each hospital admits the joint training job on its own Pad.
	for id, p := range map[string]*Policy{"a": a, "b": b, "c": c} {
		dec := e.Decide(sealed(id, p), &Request{Principal: a.Owner(), Action: ActionUse, Now: now, Purpose: "cancer-research", Program: train, TEE: tee, Output: &OutputClaim{Kind: KindModel}})
		if !dec.Allow {
			t.Fatalf("training on %s denied:\n%s", id, dec.Explain())
		}
		if id == "c" && !strings.Contains(dec.Explain(), "drop columns patient_id, zip") {
			t.Errorf("hospital C's input rule missing:\n%s", dec.Explain())
		}
	}
	v1 := &Chain{Pad: PadRef{ID: "v1", Kind: KindModel, Depth: 1}, Sources: []Source{{Pad: PadRef{ID: "a"}, Policy: a, Distance: 1}, {Pad: PadRef{ID: "b"}, Policy: b, Distance: 1}, {Pad: PadRef{ID: "c"}, Policy: c, Distance: 1}}}
	// Step 2: hospital D fine-tunes v1 with the fine-tuner (and not with the trainer).
	ft := &Request{Principal: hospD, Action: ActionUse, Now: now, Purpose: "cancer-research", Program: finetune, TEE: tee, Output: &OutputClaim{Kind: KindModel}}
	if dec := e.Decide(v1, ft); !dec.Allow {
		t.Fatalf("fine-tuning denied:\n%s", dec.Explain())
	}
	if dec := e.Decide(sealed("d", d), ft); !dec.Allow {
		t.Fatalf("fine-tuning on D's pad denied:\n%s", dec.Explain())
	}
	ft2 := *ft
	ft2.Program = train
	if dec := e.Decide(v1, &ft2); dec.Allow {
		t.Fatal("fine-tuning with the wrong program allowed")
	}
	// Step 3: the clinic queries v2 up to its limit; a non-member is refused; weights never leave.
	v2 := &Chain{Pad: PadRef{ID: "v2", Kind: KindModel, Depth: 2}, Sources: append(append([]Source{}, v1.Sources...), Source{Pad: PadRef{ID: "d"}, Policy: d, Distance: 1})}
	for i := range v2.Sources[:3] {
		v2.Sources[i].Distance = 2
		v2.Sources[i].FirstKinds, v2.Sources[i].LaterKinds = []Kind{KindModel}, []Kind{KindModel}
	}
	predict := "1d672fb075f21593fc066c247b08d357caf8a3cfc884a94c531627a6ec13a468"
	q := &Request{Principal: clinic, Action: ActionQuery, Now: now, Program: predict, TEE: tee, Uses: Uses{}}
	allowed := 0
	for i := range 60 {
		q.Uses[CounterKey{Pad: "v2", Action: ActionQuery, Party: clinic}] = uint64(i)
		if e.Decide(v2, q).Allow {
			allowed++
		}
	}
	if allowed != 50 {
		t.Errorf("clinic got %d queries, want 50 (hospital B's per-querier limit)", allowed)
	}
	q.Principal = testID("stranger")
	q.Uses = nil
	if e.Decide(v2, q).Allow {
		t.Error("a non-member queried v2")
	}
	rel := &Request{Principal: hospD, Action: ActionRelease, Now: now, TEE: tee, Output: &OutputClaim{Kind: KindModel, Recipients: []party.ID{hospD}}}
	if dec := e.Decide(v2, rel); dec.Allow || !strings.Contains(dec.Explain(), "weights-never-leave") {
		t.Errorf("weights released:\n%s", dec.Explain())
	}
	// Step 4: v2 stops with the earliest expiry (hospital B).
	q.Principal, q.Now = clinic, time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	if dec := e.Decide(v2, q); dec.Allow || !strings.Contains(dec.Explain(), "deny pad b derive.model.lifecycle.expires") {
		t.Errorf("v2 outlived hospital B's expiry:\n%s", dec.Explain())
	}
}
