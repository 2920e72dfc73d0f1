package policy

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

const fullPolicy = `version: 7
owner: ${owner}
groups:
  consortium: [${alice}, ${bob}]
  unused: [${carol}]
rules: |
  @id("train")
  permit (principal in Styx::Group::"consortium", action == Styx::Action::"use", resource)
  when { context.program == "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
lifecycle:
  not_before: 2026-01-01T00:00:00Z
  expires: 2027-01-01T00:00:00Z
  max_uses: {use: 3}
  max_uses_per_party: {query: 9}
  retention: 30d
input:
  - purposes: [research]
    drop: [name]
output:
  kinds: [model]
  max_bytes: 100
  min_aggregation: 5
  recipients: [${owner}]
derive:
  model:
    lifecycle:
      expires: 2026-06-01T00:00:00Z
tee:
  types: [tdx]
  min_tcb: 4
`

func TestParseAccessors(t *testing.T) {
	src := expand(fullPolicy)
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if p.Version() != 7 || p.Owner() != testID("owner") {
		t.Errorf("version %d owner %s", p.Version(), p.Owner())
	}
	if p.Digest() != sha256.Sum256([]byte(src)) {
		t.Error("digest is not sha256 of the document bytes")
	}
	if g := p.Groups(); len(g) != 2 || g[0] != "consortium" || g[1] != "unused" {
		t.Errorf("groups %v", g)
	}
	if m := p.Members("consortium"); len(m) != 2 || m[0] != testID("alice") {
		t.Errorf("members %v", m)
	}
	lc := p.Lifecycle()
	if lc.Retention != 30*24*time.Hour || lc.MaxUses[ActionUse] != 3 || lc.MaxUsesPerParty[ActionQuery] != 9 ||
		!lc.Expires.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) || !lc.NotBefore.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("lifecycle %+v", lc)
	}
	if tee := p.TEE(); tee.MinTCB != 4 || len(tee.Types) != 1 || tee.AllowSimulated {
		t.Errorf("tee %+v", tee)
	}
	model, table := kindBit(KindModel), kindBit(KindTable)
	if ss := p.sectionsFor(model, 0, 1); len(ss) != 1 || !ss[0].lifecycle.Expires.Equal(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)) || ss[0].output.MaxBytes != 100 || len(ss[0].input) != 1 {
		t.Errorf("derive section does not override lifecycle and inherit the rest: %+v", ss)
	}
	if ss := p.sectionsFor(model, 0, 0); len(ss) != 1 || ss[0] != p.base {
		t.Error("distance 0 must use the base section")
	}
	if ss := p.sectionsFor(table, 0, 1); len(ss) != 1 || ss[0] != p.base {
		t.Error("a first step without a derive rule must inherit the base section")
	}
	if ss := p.sectionsFor(model, table, 2); len(ss) != 1 || ss[0] != p.derive[KindModel] {
		t.Error("a later step without a derive rule must add nothing to its parent's section")
	}
	if ss := p.sectionsFor(model|table, model, 2); len(ss) != 2 || ss[0] != p.base || ss[1] != p.derive[KindModel] {
		t.Errorf("paths through a model and through a table must both govern, each section once: %+v", ss)
	}
}

func TestDigestChangesWithBytes(t *testing.T) {
	a := mustParse(t, fullPolicy)
	b := mustParse(t, fullPolicy+"# a comment\n")
	if a.Digest() == b.Digest() {
		t.Error("digest ignores document bytes")
	}
}

func TestParseErrorsAreSyntaxErrors(t *testing.T) {
	_, err := Parse([]byte("version: 1\nowner: ${owner}\nbogus: 1\n"))
	var se *SyntaxError
	if !errors.As(err, &se) || !errors.Is(err, ErrInvalid) || se.Line != 3 || se.Column != 1 {
		t.Fatalf("got %#v", err)
	}
}

func TestParseSizeCap(t *testing.T) {
	big := "version: 1\nowner: x\n#" + strings.Repeat("x", MaxDocumentSize) + "\n"
	if _, err := Parse([]byte(big)); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("got %v", err)
	}
}

func TestParseCollectionCaps(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nowner: ${owner}\ngroups:\n")
	for i := range maxMapEntries + 1 {
		b.WriteString("  g")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(": [${alice}]\n")
	}
	if _, err := Parse([]byte(expand(b.String()))); err == nil || !strings.Contains(err.Error(), "more than the 64 allowed") {
		t.Fatalf("got %v", err)
	}
	deep := "version: 1\nowner: x\ninput:\n  - keep: " + strings.Repeat("[", 40) + strings.Repeat("]", 40) + "\n"
	if _, err := Parse([]byte(deep)); err == nil {
		t.Fatal("deep nesting accepted")
	}
	rules := "version: 1\nowner: ${owner}\nrules: |\n" + strings.Repeat("  permit (principal, action, resource);\n", maxRules+1)
	if _, err := Parse([]byte(expand(rules))); err == nil || !strings.Contains(err.Error(), "rules, more than") {
		t.Fatalf("got %v", err)
	}
}

func TestRulePositionsInAllScalarStyles(t *testing.T) {
	cases := map[string]string{
		"literal":       "version: 1\nowner: ${o}\nrules: |\n    permit (principal, action, resource) when { 1 };\n",
		"folded":        "version: 1\nowner: ${o}\nrules: >\n    permit (principal, action, resource) when { 1 };\n",
		"plain":         "version: 1\nowner: ${o}\nrules: permit (principal, action, resource) when { 1 };\n",
		"double-quoted": "version: 1\nowner: ${o}\nrules: \"permit (principal, action, resource) when { 1 };\"\n",
	}
	want := map[string]string{"literal": "4:5", "folded": "4:5", "plain": "3:8", "double-quoted": "3:9"}
	for name, src := range cases {
		_, err := Parse([]byte(expand(src)))
		if err == nil || !strings.Contains(err.Error(), want[name]+": rules") {
			t.Errorf("%s: got %v, want position %s", name, err, want[name])
		}
	}
}

func TestRetentionForms(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute} {
		p := mustParse(t, "version: 1\nowner: ${o}\nlifecycle:\n  retention: "+in+"\n")
		if p.Lifecycle().Retention != want {
			t.Errorf("%s: got %s", in, p.Lifecycle().Retention)
		}
	}
	for _, in := range []string{"0d", "-1h", "99999999d", "1y"} {
		if _, err := Parse([]byte(expand("version: 1\nowner: ${o}\nlifecycle:\n  retention: " + in + "\n"))); err == nil {
			t.Errorf("%s accepted", in)
		}
	}
}

func TestOwnerAcceptsFullIdentity(t *testing.T) {
	// A short id is what documents normally carry; the parser also accepts party.ParseID's
	// other forms, and rejects anything else with the field and position.
	_, err := Parse([]byte("version: 1\nowner: styx1notanidentity\n"))
	if err == nil || !strings.Contains(err.Error(), "2:8: owner") {
		t.Fatalf("got %v", err)
	}
}

func TestPluggableLanguage(t *testing.T) {
	ps := &Parser{Languages: map[string]Language{"allow-all": allowAll{}}}
	p, err := ps.Parse([]byte(expand("version: 1\nowner: ${o}\nlanguage: allow-all\nrules: anything\n")))
	if err != nil {
		t.Fatal(err)
	}
	ch := &Chain{Pad: PadRef{ID: "x"}, Sources: []Source{{Pad: PadRef{ID: "x"}, Policy: p}}}
	d := NewEngine().Decide(ch, &Request{Principal: testID("a"), Action: ActionUse, Now: time.Now(), TEE: TEEClaims{Type: "tdx"}})
	if !d.Allow || d.Reasons[0].Rule != "allow-all" {
		t.Fatalf("%s", d.Explain())
	}
}

type allowAll struct{}

func (allowAll) Compile(string, Origin) (Rules, error) { return allowAll{}, nil }
func (allowAll) Evaluate(in *RuleInput) (bool, []Reason) {
	return true, []Reason{{Pad: in.Source, Rule: "allow-all", Effect: EffectPermit, Text: "test language"}}
}
func (allowAll) GroupRefs() []string { return nil }
func (allowAll) Len() int            { return 1 }

func TestDecisionIsConcurrencySafe(t *testing.T) {
	p := mustParse(t, fullPolicy)
	ch := &Chain{Pad: PadRef{ID: "x"}, Sources: []Source{{Pad: PadRef{ID: "x"}, Policy: p}}}
	req := &Request{Principal: testID("alice"), Action: ActionUse, Now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Program: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", TEE: TEEClaims{Type: "tdx", TCB: 4}}
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 200 {
				ok = ok && NewEngine().Decide(ch, req).Allow
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("a concurrent decision denied")
		}
	}
}

func TestDeniedError(t *testing.T) {
	p := mustParse(t, fullPolicy)
	ch := &Chain{Pad: PadRef{ID: "x"}, Sources: []Source{{Pad: PadRef{ID: "x"}, Policy: p}}}
	d := NewEngine().Decide(ch, &Request{Principal: testID("mallory"), Action: ActionUse, Now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), TEE: TEEClaims{Type: "tdx", TCB: 4}})
	err := d.Err()
	var de *DeniedError
	if !errors.Is(err, ErrDenied) || !errors.As(err, &de) || !strings.Contains(err.Error(), "no rule permits use") {
		t.Fatalf("got %v", err)
	}
	if (&DeniedError{}).Error() == "" {
		t.Error("empty denied error has no text")
	}
}

func TestDecideNil(t *testing.T) {
	e := NewEngine()
	if d := e.Decide(nil, &Request{}); d.Allow || !strings.Contains(d.Explain(), "no request or no chain") {
		t.Fatal(d.Explain())
	}
	if d := e.Decide(&Chain{}, nil); d.Allow {
		t.Fatal("nil request allowed")
	}
}

func TestCedarNestingCap(t *testing.T) {
	deep := "version: 1\nowner: ${o}\nrules: |\n  permit (principal, action, resource) when { " + strings.Repeat("(", 70) + "true" + strings.Repeat(")", 70) + " };\n"
	_, err := Parse([]byte(expand(deep)))
	if err == nil || !strings.Contains(err.Error(), "4:") || !strings.Contains(err.Error(), "nested more than 64 deep") {
		t.Fatalf("got %v", err)
	}
	// Brackets inside string literals do not count.
	ok := "version: 1\nowner: ${o}\nrules: |\n  permit (principal, action, resource) when { context.purpose == \"" + strings.Repeat("((\\\"", 40) + "\" };\n"
	if _, err := Parse([]byte(expand(ok))); err != nil {
		t.Fatalf("brackets in a string counted: %v", err)
	}
}
