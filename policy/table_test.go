package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The decision table: every file in testdata/decisions holds policies and cases; each case is a
// request over a chain with the expected verdict and substrings of the explanation.

type tableFile struct {
	Policies  map[string]string `yaml:"policies"`
	Defaults  tableRequest      `yaml:"defaults"`
	Cases     []tableCase       `yaml:"cases"`
	Malformed []malformedCase   `yaml:"malformed"`
}

type tableCase struct {
	Name    string       `yaml:"name"`
	Chain   tableChain   `yaml:"chain"`
	Request tableRequest `yaml:"request"`
	Expect  string       `yaml:"expect"`
	Explain []string     `yaml:"explain"`
	Not     []string     `yaml:"not"`
}

type tableChain struct {
	Pad     string         `yaml:"pad"`
	Kind    string         `yaml:"kind"`
	Depth   int            `yaml:"depth"`
	Owner   string         `yaml:"owner"`
	Sources map[string]int `yaml:"sources"` // policy name → distance
	// Paths gives, for a source at distance 2 or more, its derivation paths to the Pad: each the
	// kinds of the Pads along it, space-separated, from the source's child to the Pad itself.
	Paths map[string][]string `yaml:"paths"`
}

type tableRequest struct {
	Principal string            `yaml:"principal"`
	Action    string            `yaml:"action"`
	Now       string            `yaml:"now"`
	Purpose   *string           `yaml:"purpose"`
	Program   *string           `yaml:"program"`
	Job       string            `yaml:"job"`
	TEE       *TEEClaims        `yaml:"tee"`
	Output    *tableOutput      `yaml:"output"`
	Uses      map[string]uint64 `yaml:"uses"` // "action" or "action/party" → count
}

type tableOutput struct {
	Kind        string   `yaml:"kind"`
	Bytes       int64    `yaml:"bytes"`
	Aggregation int64    `yaml:"aggregation"`
	Recipients  []string `yaml:"recipients"`
	Pending     bool     `yaml:"pending"`
}

type malformedCase struct {
	Name   string `yaml:"name"`
	Policy string `yaml:"policy"`
	Error  string `yaml:"error"`
}

func TestDecisionTable(t *testing.T) {
	files, err := filepath.Glob("testdata/decisions/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no decision files", err)
	}
	total := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var tf tableFile
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(&tf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		policies := map[string]*Policy{}
		for name, src := range tf.Policies {
			policies[name] = mustParse(t, src)
		}
		base := filepath.Base(file)
		for _, c := range tf.Cases {
			total++
			t.Run(base+"/"+c.Name, func(t *testing.T) { runCase(t, policies, tf.Defaults, c) })
		}
		for _, m := range tf.Malformed {
			total++
			t.Run(base+"/malformed/"+m.Name, func(t *testing.T) { runMalformed(t, m) })
		}
	}
	if total < 150 {
		t.Errorf("decision table has %d cases, want at least 150", total)
	}
	t.Logf("%d decision cases", total)
}

func runMalformed(t *testing.T, m malformedCase) {
	_, err := Parse([]byte(expand(m.Policy)))
	if err == nil {
		t.Fatalf("parsed without error, want %q", m.Error)
	}
	if !strings.Contains(err.Error(), m.Error) {
		t.Fatalf("error %q does not contain %q", err, m.Error)
	}
}

func runCase(t *testing.T, policies map[string]*Policy, defaults tableRequest, c tableCase) {
	ch := &Chain{Pad: PadRef{ID: c.Chain.Pad, Kind: Kind(c.Chain.Kind), Depth: c.Chain.Depth}}
	if c.Chain.Owner != "" {
		ch.Pad.Owner = testID(c.Chain.Owner)
	}
	sources := c.Chain.Sources
	if sources == nil {
		sources = map[string]int{c.Chain.Pad: 0}
	}
	for _, name := range sortedKeys(sources) {
		src := Source{Pad: PadRef{ID: name}, Policy: policies[name], Distance: sources[name]}
		if paths, ok := c.Chain.Paths[name]; ok {
			src.FirstKinds, src.LaterKinds = tablePathKinds(t, paths, src.Distance)
		}
		ch.Sources = append(ch.Sources, src)
	}
	req := buildRequest(t, merge(defaults, c.Request), ch.Pad.ID)
	d := NewEngine().Decide(ch, req)
	text := d.Explain()
	js, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	text += "\n" + string(js)
	if got := map[bool]string{true: "allow", false: "deny"}[d.Allow]; got != c.Expect {
		t.Errorf("got %s, want %s\n%s", got, c.Expect, text)
	}
	contains(t, text, c.Explain...)
	for _, n := range c.Not {
		if strings.Contains(text, expand(n)) {
			t.Errorf("unexpected %q in:\n%s", n, text)
		}
	}
	if (d.Err() == nil) != d.Allow {
		t.Errorf("Err() disagrees with Allow")
	}
}

// tablePathKinds turns a case's paths into a source's path kinds, checking that the longest path
// is the source's distance.
func tablePathKinds(t *testing.T, paths []string, dist int) (first, later []Kind) {
	var f, l kindSet
	longest := 0
	for _, p := range paths {
		kinds := strings.Fields(p)
		longest = max(longest, len(kinds))
		for i, k := range kinds {
			if !Kind(k).valid() {
				t.Fatalf("path %q: unknown kind %q", p, k)
			}
			if i == 0 {
				f |= kindBit(Kind(k))
			} else {
				l |= kindBit(Kind(k))
			}
		}
	}
	if longest != dist {
		t.Fatalf("paths %q: the longest has %d steps, the source's distance is %d", paths, longest, dist)
	}
	return f.list(), l.list()
}

func merge(d, c tableRequest) tableRequest {
	if c.Principal == "" {
		c.Principal = d.Principal
	}
	if c.Action == "" {
		c.Action = d.Action
	}
	if c.Now == "" {
		c.Now = d.Now
	}
	if c.Purpose == nil {
		c.Purpose = d.Purpose
	}
	if c.Program == nil {
		c.Program = d.Program
	}
	if c.Job == "" {
		c.Job = d.Job
	}
	if c.TEE == nil {
		c.TEE = d.TEE
	}
	if c.Output == nil {
		c.Output = d.Output
	}
	if c.Uses == nil {
		c.Uses = d.Uses
	}
	return c
}

func buildRequest(t *testing.T, r tableRequest, pad string) *Request {
	req := &Request{Action: Action(r.Action), Job: r.Job}
	if r.Principal != "" && r.Principal != "none" {
		req.Principal = testID(r.Principal)
	}
	if r.Now != "" && r.Now != "none" {
		req.Now = mustTime(t, r.Now)
	}
	if r.Purpose != nil {
		req.Purpose = *r.Purpose
	}
	if r.Program != nil {
		req.Program = *r.Program
	}
	if r.TEE != nil {
		req.TEE = *r.TEE
	}
	if o := r.Output; o != nil {
		req.Output = &OutputClaim{Kind: Kind(o.Kind), Bytes: o.Bytes, Aggregation: o.Aggregation, Pending: o.Pending}
		for _, p := range o.Recipients {
			req.Output.Recipients = append(req.Output.Recipients, testID(p))
		}
	}
	req.Uses = Uses{}
	for k, n := range r.Uses {
		action, who, _ := strings.Cut(k, "/")
		key := CounterKey{Pad: pad, Action: Action(action)}
		if who != "" {
			key.Party = testID(who)
		}
		req.Uses[key] = n
	}
	return req
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

var _ = time.Second
