package policy

import (
	"strings"
	"testing"
	"time"
)

// TestWorstCaseDocumentsAreCheap parses adversarial documents near the size cap. It asserts no
// timing (timing goals live in benchmarks); it logs the time so a regression is visible, and the
// test's own timeout catches a hang.
func TestWorstCaseDocumentsAreCheap(t *testing.T) {
	n := MaxDocumentSize - 100
	cases := map[string]string{
		"deep flow":    "version: 1\ninput: " + strings.Repeat("[", n/2) + strings.Repeat("]", n/2),
		"deep block":   strings.Repeat("a:\n ", n/4),
		"many keys":    strings.Repeat("k: 1\n", n/5),
		"long list":    "version: 1\ngroups:\n  g: [" + strings.Repeat("x, ", n/3) + "]\n",
		"many rules":   "version: 1\nowner: ${o}\nrules: |\n" + strings.Repeat("  permit (principal, action, resource);\n", n/40),
		"nested cedar": "version: 1\nowner: ${o}\nrules: |\n  permit (principal, action, resource) when { " + strings.Repeat("(", n/3) + "true" + strings.Repeat(")", n/3) + " };\n",
		"long string":  "version: 1\nowner: \"" + strings.Repeat("a", n-20) + "\"\n",
		"many docs":    strings.Repeat("---\n", n/4),
		"deep mapping": "version: 1\n" + strings.Repeat("{a: ", n/5) + strings.Repeat("}", n/5),
	}
	for name, src := range cases {
		start := time.Now()
		_, err := Parse([]byte(expand(src)))
		t.Logf("%-14s %6d bytes  %v  err=%v", name, len(src), time.Since(start), abbrevErr(err))
		_, _ = Lint([]byte(expand(src)))
	}
}

func abbrevErr(err error) string {
	if err == nil {
		return "nil"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
