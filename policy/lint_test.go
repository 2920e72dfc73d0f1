package policy

import (
	"strings"
	"testing"
)

func TestLintWarnings(t *testing.T) {
	src := `version: 1
owner: ${owner}
groups:
  members: [${alice}]
  idle: [${bob}]
rules: |
  permit (principal in Styx::Group::"members", action, resource);
  permit (principal in Styx::Group::"ghosts", action, resource);
lifecycle:
  max_uses: {release: 0}
  max_uses_per_party: {query: 0}
output:
  kinds: [aggregate]
derive:
  model:
    output:
      kinds: []
tee:
  types: []
`
	ws, err := Lint([]byte(expand(src)))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.String())
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{
		"5:9: groups.idle: group \"idle\" is never used",
		"6:8: rules: rules mention group \"ghosts\", which is not defined",
		"7:3: rules: no program pin: rule rule0 (7:3)",
		"8:3: rules: no program pin: rule rule1 (8:3)",
		"10:3: lifecycle.expires: no expiry",
		"10:23: lifecycle.max_uses.release: max_uses 0: release can never be allowed",
		"11:31: lifecycle.max_uses_per_party.query: max_uses_per_party 0",
		"16:5: derive.model: no output of kind model can ever be derived",
		"17:14: derive.model.output.kinds: empty list",
		"19:10: tee.types: empty list",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing warning %q in:\n%s", want, text)
		}
	}
	for i := 1; i < len(ws); i++ {
		if ws[i].Line < ws[i-1].Line {
			t.Errorf("warnings not sorted by position:\n%s", text)
		}
	}
}

func TestLintClean(t *testing.T) {
	src := `version: 1
owner: ${owner}
groups:
  members: [${alice}]
rules: |
  permit (principal in Styx::Group::"members", action, resource)
  when { context.program == "` + strings.Repeat("c", 64) + `" };
lifecycle:
  expires: 2027-01-01T00:00:00Z
`
	ws, err := Lint([]byte(expand(src)))
	if err != nil || len(ws) != 0 {
		t.Fatalf("got %v, %v", ws, err)
	}
}

// TestLintProgramPin: every permit that lets a program run on the data (use, derive, query),
// in the rules or a derive section, must test context.program; comments, forbids, releases
// and input rules naming programs do not count as pins.
func TestLintProgramPin(t *testing.T) {
	sha := strings.Repeat("d", 64)
	head := "version: 1\nowner: ${o}\nlifecycle: {expires: 2027-01-01T00:00:00Z}\n"
	for _, tc := range []struct {
		name, doc string
		want      []string // rule ids warned about
	}{
		{"pinned", "rules: permit (principal, action, resource) when { context.program == \"" + sha + "\" };\n", nil},
		{"a pin in a comment is no pin", "rules: |\n  // context.program == \"" + sha + "\"\n  permit (principal, action, resource);\n", []string{"rule0"}},
		{"input rules naming programs are no pin", "rules: permit (principal, action, resource);\n" +
			"input:\n  - programs: [" + sha + "]\n    drop: [x]\n", []string{"rule0"}},
		{"release needs no program", "rules: |\n  permit (principal, action == Styx::Action::\"release\", resource);\n  forbid (principal, action, resource) when { context.tee.debug };\n", nil},
		{"use and derive", "rules: |\n  @id(\"train\")\n  permit (principal, action in [Styx::Action::\"use\", Styx::Action::\"derive\"], resource);\n", []string{"train"}},
		{"a query in a derive section", "rules: permit (principal, action, resource) when { context.program == \"" + sha + "\" };\n" +
			"derive:\n  model:\n    rules: |\n      @id(\"ask\")\n      permit (principal, action == Styx::Action::\"query\", resource);\n", []string{"ask"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, err := Lint([]byte(expand(head + tc.doc)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range ws {
				if strings.Contains(w.Msg, "no program pin") {
					got = append(got, strings.Fields(strings.TrimPrefix(w.Msg, "no program pin: rule "))[0])
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("pin warnings for rules %v, want %v: %v", got, tc.want, ws)
			}
		})
	}
}

func TestLintNoRules(t *testing.T) {
	ws, err := Lint([]byte(expand("version: 1\nowner: ${o}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) == 0 || !strings.Contains(ws[len(ws)-1].String()+ws[0].String(), "no rules") && !strings.Contains(warningsText(ws), "no rules: nothing is ever permitted") {
		t.Fatalf("got %v", ws)
	}
}

func warningsText(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

func TestLintInvalidIsError(t *testing.T) {
	if _, err := Lint([]byte("version: 0\n")); err == nil {
		t.Fatal("invalid policy linted without error")
	}
}

func TestLintLiterals(t *testing.T) {
	src := "version: 1\nowner: ${o}\nlifecycle: {expires: 2027-01-01T00:00:00Z}\nrules: |\n" +
		"  permit (principal == Styx::Party::\"styxid1typo\", action, resource) when { context.program == \"x\" };\n" +
		"  permit (principal == Styx::Party::\"${alice}\", action, resource) when { context.now < datetime(\"2027-12-01\") };\n" +
		"derive:\n  model:\n    rules: |\n      permit (principal == Styx::Party::\"styx1full\", action, resource);\n"
	ws, err := Lint([]byte(expand(src)))
	if err != nil {
		t.Fatal(err)
	}
	text := warningsText(ws)
	for _, want := range []string{
		`4:8: rules: Styx::Party::"styxid1typo" is not a party id`,
		`derive.model.rules: Styx::Party::"styx1full" is not a party id`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, testID("alice").String()) {
		t.Errorf("a valid party id was flagged:\n%s", text)
	}
}

func TestBadDatetimeLiteralIsAParseError(t *testing.T) {
	_, err := Parse([]byte(expand("version: 1\nowner: ${o}\nrules: |\n  permit (principal, action, resource) when { context.now < datetime(\"2027-13-01\") };\n")))
	if err == nil || !strings.Contains(err.Error(), "4:3: rules") || !strings.Contains(err.Error(), "datetime") {
		t.Fatalf("got %v", err)
	}
}

func TestLintConstantConditions(t *testing.T) {
	src := "version: 1\nowner: ${o}\nlifecycle: {expires: 2027-01-01T00:00:00Z}\nrules: |\n" +
		"  @id(\"off\") permit (principal, action, resource) when { false };\n" +
		"  @id(\"also-off\") forbid (principal, action, resource) unless { true };\n" +
		"  @id(\"on\") permit (principal, action, resource) when { true } when { context.program == \"x\" };\n" +
		"derive:\n  model:\n    rules: |\n      @id(\"m\") permit (principal, action, resource) when { false };\n"
	ws, err := Lint([]byte(expand(src)))
	if err != nil {
		t.Fatal(err)
	}
	text := warningsText(ws)
	for _, want := range []string{"rule off (5:3) has a condition that is always false", "rule also-off (6:3)", "derive.model.rules: rule m (11:7)"} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "rule on ") {
		t.Errorf("a live rule was flagged:\n%s", text)
	}
}

// TestLintReachableThroughPaths: a kind is reachable only if every section along some derivation
// path allows it, so a prediction rule cannot reopen table outputs that the model rule closed.
func TestLintReachableThroughPaths(t *testing.T) {
	src := `version: 1
owner: ${owner}
rules: |
  permit (principal, action, resource) when { context.program == "` + strings.Repeat("c", 64) + `" };
lifecycle: {expires: 2027-01-01T00:00:00Z}
output: {kinds: [model]}
derive:
  model:
    output: {kinds: [model, prediction]}
  prediction:
    output: {kinds: [table]}
  table:
    output: {kinds: []}
`
	ws, err := Lint([]byte(expand(src)))
	if err != nil {
		t.Fatal(err)
	}
	var text []string
	for _, w := range ws {
		text = append(text, w.String())
	}
	got := strings.Join(text, "\n")
	if !strings.Contains(got, "derive.table: no output of kind table can ever be derived") {
		t.Errorf("table reported reachable through a prediction of a model:\n%s", got)
	}
	if strings.Contains(got, "derive.prediction: no output") || strings.Contains(got, "derive.model: no output") {
		t.Errorf("a reachable kind reported unreachable:\n%s", got)
	}
}
