package policy

import (
	"crypto/sha256"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// testID returns a deterministic party id for a name, so test data can say ${alice}.
func testID(name string) party.ID { return party.ID(sha256.Sum256([]byte("test party " + name))) }

var placeholder = regexp.MustCompile(`\$\{([a-z0-9_]+)\}`)

// expand replaces ${name} with the id string of the test party name.
func expand(s string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		return testID(m[2 : len(m)-1]).String()
	})
}

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(expand(src)))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return p
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func contains(t testing.TB, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, expand(w)) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}
