package policy

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

// TestInputObligationsDriveTheFilter goes from a decision to the bytes a program would see:
// the input rules of the decision's obligations, applied with FilterCSV.
func TestInputObligationsDriveTheFilter(t *testing.T) {
	p := mustParse(t, `version: 1
owner: ${o}
rules: permit (principal, action, resource);
input:
  - drop: [name]
  - purposes: [stats]
    rows: ["age >= 18"]
  - purposes: [other]
    keep: [id]
`)
	ch := &Chain{Pad: PadRef{ID: "x"}, Sources: []Source{{Pad: PadRef{ID: "x"}, Policy: p}}}
	d := NewEngine().Decide(ch, &Request{Principal: testID("a"), Action: ActionUse, Purpose: "stats", Now: time.Now(), TEE: TEEClaims{Type: "tdx"}})
	if !d.Allow {
		t.Fatal(d.Explain())
	}
	rules := d.Obligations.InputRules()
	if len(rules) != 2 {
		t.Fatalf("got %d input rules, want 2 (drop name; rows for stats)", len(rules))
	}
	out, err := io.ReadAll(FilterCSV(strings.NewReader(patients), rules))
	if err != nil {
		t.Fatal(err)
	}
	want := "id,age,diagnosis,radius\n2,45,M,20.1\n3,63,B,31\n"
	if string(out) != want {
		t.Fatalf("program would see\n%s\nwant\n%s", out, want)
	}
}

// TestRulesWithoutMemo evaluates compiled rules directly, as another caller of the Rules interface
// would, without the engine's per-decision cache.
func TestRulesWithoutMemo(t *testing.T) {
	p := mustParse(t, `version: 1
owner: ${o}
groups:
  g: [${a}]
rules: |
  permit (principal in Styx::Group::"g", action, resource) when { context.depth == 2 && resource.owner == principal };
`)
	in := &RuleInput{Request: &Request{Principal: testID("a"), Action: ActionUse, Now: time.Now()}, Principal: testID("a").String(),
		Groups: []string{"g"}, Pad: PadRef{ID: "x", Kind: KindModel}, PadOwner: testID("a").String(), Source: "s", Depth: 2}
	ok, reasons := p.base.rules.Evaluate(in)
	if !ok || len(reasons) != 1 || reasons[0].Effect != EffectPermit {
		t.Fatalf("got %v %v", ok, reasons)
	}
	in.Depth = 1
	if ok, _ := p.base.rules.Evaluate(in); ok {
		t.Fatal("depth condition ignored")
	}
	in.Depth, in.Groups = 2, nil
	if ok, _ := p.base.rules.Evaluate(in); ok {
		t.Fatal("group membership ignored")
	}
}

func TestDecisionJSON(t *testing.T) {
	p := mustParse(t, "version: 1\nowner: ${o}\nrules: permit (principal, action, resource);\nlifecycle:\n  expires: 2027-01-01T00:00:00Z\n  retention: 1h\n  max_uses: {use: 3}\n")
	ch := &Chain{Pad: PadRef{ID: "x"}, Sources: []Source{{Pad: PadRef{ID: "x"}, Policy: p}}}
	d := NewEngine().Decide(ch, &Request{Principal: testID("a"), Action: ActionUse, Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), TEE: TEEClaims{Type: "snp"}})
	js, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	ob := back["obligations"].(map[string]any)
	if back["allow"] != true || ob["expires"] != "2027-01-01T00:00:00Z" || ob["retention"] != float64(time.Hour) {
		t.Fatalf("json: %s", js)
	}
	counters := ob["counters"].([]any)
	first := counters[0].(map[string]any)
	if first["limit"] != float64(3) || first["sources"].([]any)[0] != "x" {
		t.Fatalf("counters: %v", counters)
	}
}

func TestReasonString(t *testing.T) {
	r := Reason{Pad: "h1", Rule: "lifecycle.expires", Pos: "7:12", Effect: EffectDeny, Text: "expired"}
	if got := r.String(); got != "deny pad h1 lifecycle.expires (7:12): expired" {
		t.Fatal(got)
	}
	if got := (Reason{Rule: "request", Effect: EffectError, Text: "bad"}).String(); got != "error request: bad" {
		t.Fatal(got)
	}
}

func TestOriginMap(t *testing.T) {
	block := Origin{Line: 5, Column: 2, Block: true}
	if block.Map(1, 1) != "6:3" || block.Map(3, 4) != "8:6" {
		t.Fatal(block.Map(1, 1), block.Map(3, 4))
	}
	inline := Origin{Line: 4, Column: 7}
	if inline.Map(1, 1) != "5:8" || inline.Map(2, 3) != "6:3" {
		t.Fatal(inline.Map(1, 1), inline.Map(2, 3))
	}
	if mkPos(0, 3) != "" {
		t.Fatal("a zero line must give no position")
	}
}

func TestIntersect(t *testing.T) {
	if intersect[string](nil, nil) != nil {
		t.Fatal("nil and nil must stay unrestricted")
	}
	if got := intersect(nil, []string{"a"}); len(got) != 1 {
		t.Fatal(got)
	}
	if got := intersect([]string{"a", "b"}, []string{"b", "c"}); len(got) != 1 || got[0] != "b" {
		t.Fatal(got)
	}
	if got := intersect([]string{"a"}, []string{"c"}); got == nil || len(got) != 0 {
		t.Fatal("an empty intersection must stay empty, not become unrestricted")
	}
}

func TestShortening(t *testing.T) {
	if shortID("short") != "short" || abbrevHex("abcd") != "abcd" || abbrevHex(strings.Repeat("a", 40)) != strings.Repeat("a", 16)+"…" {
		t.Fatal("shortening")
	}
}

// isHexSHA256 accepts exactly what the hexSHA256 expression accepts.
func TestIsHexSHA256MatchesTheExpression(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{"", good, good[:63], good + "0", strings.ToUpper(good), good[:63] + "g",
		good[:63] + "\n", "\n" + good[1:], good[:32] + "é" + good[34:], strings.Repeat("f", 64)} {
		if got, want := isHexSHA256(s), hexSHA256.MatchString(s); got != want {
			t.Errorf("isHexSHA256(%q) = %v, the expression says %v", s, got, want)
		}
	}
}
