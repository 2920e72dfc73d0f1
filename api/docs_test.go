package api

import (
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestOpenAPIMatchesRoutes keeps docs/openapi.yaml and the route table in step: every route is
// documented with its method, every documented operation is routed, and only the public
// routes go without the signature.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Security []map[string][]string `yaml:"security"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	public := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			p := strings.ToUpper(method) + " " + path
			documented = append(documented, p)
			public[p] = op.Security != nil && len(op.Security) == 0
		}
	}
	var routed []string
	for _, rt := range routes {
		routed = append(routed, rt.pattern)
		if public[rt.pattern] != rt.public {
			t.Errorf("%s: public=%v in the route table, %v in openapi.yaml", rt.pattern, rt.public, public[rt.pattern])
		}
	}
	slices.Sort(documented)
	slices.Sort(routed)
	if !slices.Equal(documented, routed) {
		t.Fatalf("openapi.yaml documents\n  %s\nthe route table has\n  %s", strings.Join(documented, "\n  "), strings.Join(routed, "\n  "))
	}
	md, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt.pattern, " ")
		if !strings.Contains(string(md), "`"+method+" "+strings.TrimPrefix(path, "/v1")) {
			t.Errorf("docs/api.md does not list %s", rt.pattern)
		}
	}
}
