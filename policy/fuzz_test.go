package policy

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// seedPolicies returns every policy document in the decision table and the examples, expanded.
func seedPolicies(f *testing.F) [][]byte {
	var seeds [][]byte
	files, _ := filepath.Glob("testdata/decisions/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var tf tableFile
		if err := yaml.Unmarshal(data, &tf); err != nil {
			f.Fatal(err)
		}
		for _, src := range tf.Policies {
			seeds = append(seeds, []byte(expand(src)))
		}
		for _, m := range tf.Malformed {
			seeds = append(seeds, []byte(expand(m.Policy)))
		}
	}
	examples, _ := filepath.Glob("../examples/policies/*.yaml")
	for _, file := range examples {
		if data, err := os.ReadFile(file); err == nil {
			seeds = append(seeds, data)
		}
	}
	return seeds
}

// FuzzParse checks that no document makes Parse or Lint panic, that errors are positioned
// SyntaxErrors, and that a parsed policy can be evaluated and re-parsed to the same digest.
func FuzzParse(f *testing.F) {
	for _, s := range seedPolicies(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if _, lerr := Lint(data); (lerr == nil) != (err == nil) {
			t.Fatalf("Parse and Lint disagree: %v vs %v", err, lerr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		again, err := Parse(data)
		if err != nil || again.Digest() != p.Digest() {
			t.Fatalf("re-parse differs: %v", err)
		}
		ch := &Chain{Pad: PadRef{ID: "x", Kind: KindModel}, Sources: []Source{{Pad: PadRef{ID: "s"}, Policy: p, Distance: 1}}}
		for _, a := range Actions {
			d := NewEngine().Decide(ch, &Request{Principal: testID("alice"), Action: a, Now: time.Unix(1780000000, 0),
				Output: &OutputClaim{Kind: KindAggregate, Bytes: 10}})
			_ = d.Explain()
		}
	})
}

// FuzzCedarRules fuzzes the Cedar rule text alone inside a fixed document.
func FuzzCedarRules(f *testing.F) {
	for _, s := range []string{
		`permit (principal, action, resource);`,
		`@id("x") forbid (principal in Styx::Group::"g", action == Styx::Action::"use", resource) when { context.now > datetime("2026-01-01") };`,
		`permit (principal, action, resource) when { context.uses.use * 9223372036854775807 > 0 };`,
		`permit (principal, action, resource) when { context.output.recipients.containsAny([principal]) && resource.owner == principal };`,
		`permit (principal, action, resource) unless { context.purpose like "*x*" || context.tee.tcb < 3 };`,
		`permit (principal == Styx::Party::"a", action in [Styx::Action::"use"], resource is Styx::Pad);`,
		"permit (", "@id(", `permit (principal, action, resource) when { context.depth.foo };`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rules string) {
		var doc bytes.Buffer
		doc.WriteString("version: 1\nowner: " + testID("o").String() + "\ngroups:\n  g: [" + testID("alice").String() + "]\nrules: |\n")
		for _, line := range strings.Split(rules, "\n") {
			doc.WriteString("  " + line + "\n")
		}
		p, err := Parse(doc.Bytes())
		if err != nil {
			return
		}
		ch := &Chain{Pad: PadRef{ID: "x", Owner: testID("o")}, Sources: []Source{{Pad: PadRef{ID: "x"}, Policy: p}}}
		NewEngine().Decide(ch, &Request{Principal: testID("alice"), Action: ActionUse, Now: time.Unix(1780000000, 0),
			Uses: Uses{{Pad: "x", Action: ActionUse}: 1 << 63}})
	})
}

// FuzzRowFilter checks that filters parse without panics and that String round-trips.
func FuzzRowFilter(f *testing.F) {
	for _, s := range []string{"age >= 18", `c == "x"`, `"a b" != 'y'`, "r < -1e9", "a", `a == "`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRowFilter(s)
		if err != nil {
			return
		}
		again, err := ParseRowFilter(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %q does not round-trip: %v", s, r.String(), err)
		}
	})
}

// FuzzFilterCSV checks that arbitrary CSV never panics the filter.
func FuzzFilterCSV(f *testing.F) {
	f.Add(patients, "drop=name;row=age >= 18")
	f.Add("a,b\n1,2\n", "keep=b")
	f.Add("a\n\"x\n", "row=a == 'x'")
	f.Fuzz(func(t *testing.T, in, spec string) {
		var r InputRule
		for _, part := range strings.Split(spec, ";") {
			k, v, _ := strings.Cut(part, "=")
			switch k {
			case "keep":
				r.Keep = strings.Split(v, ",")
			case "drop":
				r.Drop = strings.Split(v, ",")
			case "row":
				if rf, err := ParseRowFilter(v); err == nil {
					r.Rows = append(r.Rows, rf)
				}
			}
		}
		_, _ = io.Copy(io.Discard, FilterCSV(strings.NewReader(in), []InputRule{r}))
	})
}
