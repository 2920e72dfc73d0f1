package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func sealedChain(id string, p *Policy) *Chain {
	return &Chain{Pad: PadRef{ID: id}, Sources: []Source{{Pad: PadRef{ID: id}, Policy: p}}}
}

func TestDerivedChain(t *testing.T) {
	p := mustParse(t, "version: 1\nowner: ${o}\nrules: permit (principal, action, resource);\n")
	a, b, c := sealedChain("a", p), sealedChain("b", p), sealedChain("c", p)
	v1, err := DerivedChain("v1", KindModel, testID("x"), a, b)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Pad.Depth != 1 || len(v1.Sources) != 2 || v1.Sources[0].Distance != 1 {
		t.Fatalf("v1: %+v", v1)
	}
	// v2 reads v1 and a again: a is reached at distances 1 and 2; the longest wins.
	v2, err := DerivedChain("v2", KindModel, testID("x"), v1, a, c)
	if err != nil {
		t.Fatal(err)
	}
	dist := map[string]int{}
	for _, s := range v2.Sources {
		dist[s.Pad.ID] = s.Distance
	}
	if v2.Pad.Depth != 2 || len(v2.Sources) != 3 || dist["a"] != 2 || dist["b"] != 2 || dist["c"] != 1 {
		t.Fatalf("v2: depth %d sources %v", v2.Pad.Depth, dist)
	}
	if v1.Sources[0].Distance != 1 {
		t.Fatal("deriving changed the parent chain")
	}
	v3, err := DerivedChain("v3", KindPrediction, testID("x"), v2)
	if err != nil || v3.Pad.Depth != 3 {
		t.Fatalf("v3: %v %+v", err, v3)
	}
	kinds := map[string][2][]Kind{}
	for _, s := range v3.Sources {
		kinds[s.Pad.ID] = [2][]Kind{s.FirstKinds, s.LaterKinds}
	}
	// a and b: their model child v1, then the model v2 and the prediction v3; c: its child v2, then v3.
	want := map[string][2][]Kind{
		"a": {{KindModel}, {KindModel, KindPrediction}},
		"b": {{KindModel}, {KindModel, KindPrediction}},
		"c": {{KindModel}, {KindPrediction}},
	}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("v3 path kinds %v, want %v", kinds, want)
	}
	d := NewEngine().Decide(v3, &Request{Principal: testID("q"), Action: ActionRelease, Now: time.Now(), TEE: TEEClaims{Type: "tdx"}})
	if !d.Allow {
		t.Fatal(d.Explain())
	}
}

func TestDerivedChainErrors(t *testing.T) {
	p := mustParse(t, "version: 1\nowner: ${o}\n")
	a := sealedChain("a", p)
	for name, f := range map[string]func() (*Chain, error){
		"no id":      func() (*Chain, error) { return DerivedChain("", KindModel, testID("x"), a) },
		"bad kind":   func() (*Chain, error) { return DerivedChain("v", "weights", testID("x"), a) },
		"no parents": func() (*Chain, error) { return DerivedChain("v", KindModel, testID("x")) },
		"own parent": func() (*Chain, error) { return DerivedChain("a", KindModel, testID("x"), a) },
		"nil parent": func() (*Chain, error) { return DerivedChain("v", KindModel, testID("x"), nil) },
	} {
		if _, err := f(); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	var many []*Chain
	for i := range MaxAncestors + 1 {
		many = append(many, sealedChain(strings.Repeat("x", i+1), p))
	}
	if _, err := DerivedChain("v", KindModel, testID("x"), many...); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("too many sources: got %v", err)
	}
}

// TestRevokedSourceDeniesDescendants: revoking one source makes every descendant unusable, and
// the reason names the revoked ancestor.
func TestRevokedSourceDeniesDescendants(t *testing.T) {
	p := mustParse(t, "version: 1\nowner: ${o}\nrules: permit (principal, action, resource);\n")
	a, b := sealedChain("a", p), sealedChain("b", p)
	v1, _ := DerivedChain("v1", KindModel, testID("x"), a, b)
	v2, _ := DerivedChain("v2", KindModel, testID("x"), v1)
	req := &Request{Principal: testID("q"), Action: ActionQuery, Now: time.Now(), TEE: TEEClaims{Type: "tdx"}}
	if !NewEngine().Decide(v2, req).Allow {
		t.Fatal("denied before revocation")
	}
	for i := range v2.Sources {
		if v2.Sources[i].Pad.ID == "b" {
			v2.Sources[i].RevokedAt = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		}
	}
	d := NewEngine().Decide(v2, req)
	if d.Allow || !strings.Contains(d.Explain(), "deny pad b revoked: revoked by its owner at 2026-05-01T12:00:00Z") {
		t.Fatal(d.Explain())
	}
	if strings.Contains(d.Explain(), "deny pad a") {
		t.Fatal("the live source was blamed")
	}
}

// TestDerivedChainLaundering: a table derived from a model obeys the source's model rule, so the
// model's "never released" cannot be bypassed by deriving something else from it.
func TestDerivedChainLaundering(t *testing.T) {
	p := mustParse(t, `version: 1
owner: ${o}
rules: permit (principal, action, resource);
derive:
  model:
    rules: |
      permit (principal, action, resource);
      @id("never-weights")
      forbid (principal, action == Styx::Action::"release", resource);
  table:
    rules: permit (principal, action, resource);
`)
	m, err := DerivedChain("m", KindModel, testID("x"), sealedChain("s", p))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := DerivedChain("t", KindTable, testID("x"), m)
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Principal: testID("q"), Action: ActionRelease, Now: time.Now(), TEE: TEEClaims{Type: "tdx"}}
	if d := NewEngine().Decide(tbl, req); d.Allow || !strings.Contains(d.Explain(), "forbid pad s never-weights") {
		t.Fatalf("a table derived from the model was released:\n%s", d.Explain())
	}
	direct, _ := DerivedChain("t1", KindTable, testID("x"), sealedChain("s", p))
	if d := NewEngine().Decide(direct, req); !d.Allow {
		t.Fatalf("a table derived from the data was refused:\n%s", d.Explain())
	}
}

// TestPathKindsChecked: path kinds that cannot describe a chain are a malformed request.
func TestPathKindsChecked(t *testing.T) {
	p := mustParse(t, "version: 1\nowner: ${o}\nrules: permit (principal, action, resource);\n")
	req := &Request{Principal: testID("q"), Action: ActionQuery, Now: time.Now(), TEE: TEEClaims{Type: "tdx"}}
	for name, c := range map[string]struct {
		pad  PadRef
		src  Source
		want string
	}{
		"unknown kind":        {PadRef{ID: "v", Kind: KindModel}, Source{Distance: 1, FirstKinds: []Kind{"weights"}}, `unknown kind "weights"`},
		"kinds at distance 0": {PadRef{ID: "s"}, Source{FirstKinds: []Kind{KindModel}}, "is the requested pad but has derivation path kinds"},
		"later at distance 1": {PadRef{ID: "v", Kind: KindModel}, Source{Distance: 1, LaterKinds: []Kind{KindModel}}, "one derivation step away"},
		"no first kinds":      {PadRef{ID: "v", Kind: KindModel}, Source{Distance: 2, LaterKinds: []Kind{KindModel}}, "kinds of its children on the paths are not given"},
		"no later kinds":      {PadRef{ID: "v", Kind: KindModel}, Source{Distance: 2, FirstKinds: []Kind{KindModel}}, "kinds two or more steps away are not given"},
		"pad kind missing":    {PadRef{ID: "v", Kind: KindTable}, Source{Distance: 2, FirstKinds: []Kind{KindModel}, LaterKinds: []Kind{KindModel}}, `kind "table" is not on its derivation paths`},
	} {
		c.src.Pad, c.src.Policy = PadRef{ID: "s"}, p
		d := NewEngine().Decide(&Chain{Pad: c.pad, Sources: []Source{c.src}}, req)
		if d.Allow || !strings.Contains(d.Explain(), c.want) {
			t.Errorf("%s: want a deny saying %q, got:\n%s", name, c.want, d.Explain())
		}
	}
}
