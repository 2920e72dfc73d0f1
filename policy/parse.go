package policy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/styx-tee/styx/party"
	"gopkg.in/yaml.v3"
)

// A Policy is a parsed, validated policy document. It is immutable and safe for concurrent use; its
// rules are compiled once, so evaluating it is cheap.
type Policy struct {
	version      uint64
	owner        party.ID
	digest       [32]byte
	groups       map[string][]party.ID
	memberOf     map[party.ID][]string           // party → sorted names of its groups
	cedarParents map[party.ID]types.EntityUIDSet // party → its groups as Cedar entities
	base         *section
	derive       map[Kind]*section
	tee          TEERequirements
	pos          map[string]Pos // dotted field path → position, for reasons
	warnings     []Warning
}

// A section is the part of a policy that a derive rule may override.
type section struct {
	prefix    string          // "" for the base policy, "derive.KIND." for a derive rule
	own       map[string]bool // for a derive rule: the fields it sets itself (rules, lifecycle, input, output)
	rules     Rules
	lifecycle Lifecycle
	input     []InputRule
	output    OutputRules
}

// Version returns the document's version; a Pad's policy may only be replaced by a higher one.
func (p *Policy) Version() uint64 { return p.version }

// Owner returns the party that owns the Pad and signs its policy.
func (p *Policy) Owner() party.ID { return p.owner }

// Digest returns SHA-256 over the exact document bytes that were parsed: the bytes are the canonical
// form (they are what the owner signs), so the digest names this policy version in logs and receipts.
func (p *Policy) Digest() [32]byte { return p.digest }

// Groups returns the names of the policy's groups, sorted.
func (p *Policy) Groups() []string {
	names := make([]string, 0, len(p.groups))
	for n := range p.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Members returns a copy of the members of a group.
func (p *Policy) Members(group string) []party.ID { return slices.Clone(p.groups[group]) }

// Lifecycle returns the base lifecycle (before any derive rule).
func (p *Policy) Lifecycle() Lifecycle { return p.base.lifecycle }

// TEE returns the TEE requirements.
func (p *Policy) TEE() TEERequirements { return p.tee }

// A Parser parses policy documents. Its zero value accepts the Cedar rule language only.
type Parser struct {
	// Languages maps a document's "language" field to its rule language; "cedar" (also the default
	// when the field is absent) is always available.
	Languages map[string]Language
}

// Parse parses and validates a policy document with the default rule language (Cedar).
func Parse(data []byte) (*Policy, error) { return (&Parser{}).Parse(data) }

// Parse parses and validates a policy document. Errors are *SyntaxError values with the position.
func (ps *Parser) Parse(data []byte) (*Policy, error) {
	p, _, err := ps.parse(data)
	return p, err
}

func (ps *Parser) parse(data []byte) (*Policy, *yaml.Node, error) {
	if len(data) > MaxDocumentSize {
		return nil, nil, &SyntaxError{Msg: fmt.Sprintf("document is %d bytes, more than the %d allowed", len(data), MaxDocumentSize)}
	}
	root, err := decodeRoot(data)
	if err != nil {
		return nil, nil, err
	}
	var raw rawDocument
	if err := root.Decode(&raw); err != nil {
		return nil, nil, decodeError(root, err)
	}
	v := &validator{root: root, src: data, pos: map[string]Pos{}, langs: ps.Languages}
	p := v.policy(&raw)
	if v.err != nil {
		return nil, nil, v.err
	}
	p.digest = sha256.Sum256(data)
	return p, root, nil
}

// decodeRoot parses YAML into a node tree and checks it against the document's shape.
func decodeRoot(data []byte) (*yaml.Node, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &SyntaxError{Msg: "empty document"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		e := &SyntaxError{Msg: "yaml: " + trimYAMLErr(err)}
		if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1]) // yaml.v3 reports no column for syntax errors
			e.Msg = "yaml: " + m[2]
		}
		return nil, e
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &SyntaxError{Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &SyntaxError{Msg: "not a policy document"}
	}
	root := doc.Content[0]
	if err := checkNode(root, reflect.TypeFor[rawDocument](), "", 0); err != nil {
		return nil, err
	}
	return root, nil
}

var (
	yamlLine    = regexp.MustCompile(`^yaml: `)
	yamlErrLine = regexp.MustCompile(`line (\d+): (.*)`)
)

// decodeError turns a yaml.v3 type error ("line 3: cannot unmarshal !!str `x` into uint64") into a
// SyntaxError positioned at the first value on that line.
func decodeError(root *yaml.Node, err error) error {
	m := yamlErrLine.FindStringSubmatch(err.Error())
	if m == nil {
		return &SyntaxError{Msg: trimYAMLErr(err)}
	}
	line, _ := strconv.Atoi(m[1])
	e := &SyntaxError{Line: line, Column: 1, Msg: "wrong type: " + m[2]}
	if n := firstOnLine(root, line); n != nil {
		e.Column = n.Column
	}
	return e
}

func firstOnLine(n *yaml.Node, line int) *yaml.Node {
	if n.Line == line && n.Kind == yaml.ScalarNode {
		return n
	}
	var best *yaml.Node
	for _, c := range n.Content {
		if f := firstOnLine(c, line); f != nil && (best == nil || f.Column > best.Column) {
			best = f
		}
	}
	return best
}

func trimYAMLErr(err error) string { return yamlLine.ReplaceAllString(err.Error(), "") }

// readsUses reports whether deciding action a under p can read a use counter (see
// Chain.NeedsUses). Rules in a language that does not say what they read are assumed to.
func (p *Policy) readsUses(a Action) bool {
	sections := []*section{p.base}
	for _, s := range p.derive {
		sections = append(sections, s)
	}
	for _, s := range sections {
		if s == nil {
			continue
		}
		_, limit := s.lifecycle.MaxUses[a]
		_, perParty := s.lifecycle.MaxUsesPerParty[a]
		if limit || perParty {
			return true
		}
		if s.rules == nil {
			continue
		}
		cr, ok := s.rules.(*cedarRules)
		if !ok || cr.use&(ctxUses|ctxPartyUses) != 0 {
			return true
		}
	}
	return false
}
