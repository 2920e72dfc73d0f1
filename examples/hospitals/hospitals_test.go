package hospitals

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
)

func TestPoliciesParse(t *testing.T) {
	ids := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "clinic"} {
		k, err := party.Generate()
		if err != nil {
			t.Fatal(err)
		}
		ids[n] = k.Identity().ID().String()
	}
	sha := strings.Repeat("ab", 32)
	for _, name := range []string{"hospital-a", "hospital-b", "hospital-c", "hospital-d"} {
		vars := map[string]string{"version": "1", "a": ids["a"], "b": ids["b"], "c": ids["c"], "d": ids["d"],
			"clinic": ids["clinic"], "consortium": ids["a"] + ", " + ids["b"], "train": sha, "predict": sha, "stats": sha,
			"expires_a": "2027-06-01T00:00:00Z", "expires_b": "2027-03-01T00:00:00Z",
			"expires_c": "2027-09-01T00:00:00Z", "expires_d": "2028-01-01T00:00:00Z"}
		doc, err := Policy(name, vars)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := policy.Parse(doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		delete(vars, "train")
		if _, err := Policy(name, vars); err == nil || !strings.Contains(err.Error(), "${train}") {
			t.Fatalf("%s without train: %v", name, err)
		}
	}
	over := fstest.MapFS{"hospital-b.yaml": {Data: []byte("owner: ${b}\n")}}
	if doc, err := PolicyFrom(over, "hospital-b", map[string]string{"b": "x"}); err != nil || string(doc) != "owner: x\n" {
		t.Fatalf("override: %q, %v", doc, err)
	}
	if doc, err := PolicyFrom(over, "hospital-a", map[string]string{"a": "x"}); err == nil || !strings.Contains(err.Error(), "${") || len(doc) != 0 {
		t.Fatalf("fallback to the embedded template: %q, %v", doc, err) // the embedded one needs more variables
	}
	if _, err := Policy("nope", nil); err == nil {
		t.Fatal("missing template rendered")
	}
	if len(WDBC) < 100000 {
		t.Fatalf("embedded data set is %d bytes", len(WDBC))
	}
}
