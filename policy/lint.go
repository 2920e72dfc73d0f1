package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/styx-tee/styx/party"
	"gopkg.in/yaml.v3"
)

// A Warning is a lint finding: the document is valid but probably not what its author meant.
type Warning struct {
	Line, Column int
	Field        string
	Msg          string
}

func (w Warning) String() string {
	pos := ""
	if w.Line > 0 {
		pos = fmt.Sprintf("%d:%d: ", w.Line, w.Column)
	}
	if w.Field != "" {
		return pos + w.Field + ": " + w.Msg
	}
	return pos + w.Msg
}

// Lint parses a document like Parse and, if it is valid, returns warnings: no expiry, no program
// pin, a group never used, and rules or settings that can never match. `styx pad seal` calls it
// before sealing.
func Lint(data []byte) ([]Warning, error) {
	p, root, err := (&Parser{}).parse(data)
	if err != nil {
		return nil, err
	}
	var raw rawDocument
	if err := root.Decode(&raw); err != nil {
		return nil, &SyntaxError{Msg: err.Error()}
	}
	l := &linter{root: root}
	l.expiry(p)
	l.programPin(p)
	l.groups(p)
	l.neverMatch(p, &raw)
	l.literals(&raw)
	slices.SortFunc(l.warnings, func(a, b Warning) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Column - b.Column
	})
	return l.warnings, nil
}

type linter struct {
	root     *yaml.Node
	warnings []Warning
}

func (l *linter) warn(path, format string, args ...any) {
	v := validator{root: l.root}
	w := Warning{Field: path, Msg: fmt.Sprintf(format, args...)}
	for p := path; ; {
		if n := v.node(p); n != nil {
			w.Line, w.Column = n.Line, n.Column
			break
		}
		i := strings.LastIndexByte(p, '.')
		if i < 0 {
			w.Line, w.Column = l.root.Line, l.root.Column
			break
		}
		p = p[:i]
	}
	l.warnings = append(l.warnings, w)
}

// warnAt is warn positioned at a rule ("id (line:col)", as the rules report them) rather than
// at the field that holds it.
func (l *linter) warnAt(path, rule, format string, args ...any) {
	l.warn(path, format, args...)
	w := &l.warnings[len(l.warnings)-1]
	if i := strings.LastIndexByte(rule, '('); i >= 0 {
		var line, col int
		if n, _ := fmt.Sscanf(rule[i:], "(%d:%d)", &line, &col); n == 2 {
			w.Line, w.Column = line, col
		}
	}
}

func (l *linter) expiry(p *Policy) {
	if p.base.lifecycle.Expires.IsZero() {
		l.warn("lifecycle.expires", "no expiry: the data and everything derived from it stay usable forever")
	}
}

// programPin warns of every permit, in the rules and in every derive section, that lets a
// program run on the data (use, derive or query) without a condition on context.program.
func (l *linter) programPin(p *Policy) {
	for _, s := range append([]*section{p.base}, derivedSections(p)...) {
		up, ok := s.rules.(interface{ Unpinned() []string })
		if !ok || !s.owns("rules") {
			continue
		}
		for _, r := range up.Unpinned() {
			l.warnAt(s.prefix+"rules", r, "no program pin: rule %s permits use, derive or query without testing context.program, so any program may read the data", r)
		}
	}
}

func (l *linter) groups(p *Policy) {
	used := map[string]bool{}
	for _, s := range append([]*section{p.base}, derivedSections(p)...) {
		for _, g := range s.rules.GroupRefs() {
			if !s.owns("rules") {
				used[g] = true
				continue
			}
			used[g] = true
			if _, ok := p.groups[g]; !ok {
				l.warn(strings.TrimSuffix(s.prefix+"rules", "."), "rules mention group %q, which is not defined, so they never match its members", g)
			}
		}
	}
	for _, g := range p.Groups() {
		if !used[g] {
			l.warn("groups."+g, "group %q is never used by any rule", g)
		}
	}
}

func (l *linter) neverMatch(p *Policy, raw *rawDocument) {
	if p.base.rules.Len() == 0 {
		l.warn("rules", "no rules: nothing is ever permitted")
	}
	for _, s := range append([]*section{p.base}, derivedSections(p)...) {
		nm, ok := s.rules.(interface{ NeverMatch() []string })
		if !ok || !s.owns("rules") {
			continue
		}
		for _, r := range nm.NeverMatch() {
			l.warnAt(s.prefix+"rules", r, "rule %s has a condition that is always false, so it never matches", r)
		}
	}
	sections := map[string]*section{"": p.base}
	for k, s := range p.derive {
		sections[string(k)] = s
	}
	for _, s := range sections {
		for _, a := range Actions {
			if !s.owns("lifecycle") {
				break
			}
			if n, ok := s.lifecycle.MaxUses[a]; ok && n == 0 {
				l.warn(s.prefix+"lifecycle.max_uses."+string(a), "max_uses 0: %s can never be allowed", a)
			}
			if n, ok := s.lifecycle.MaxUsesPerParty[a]; ok && n == 0 {
				l.warn(s.prefix+"lifecycle.max_uses_per_party."+string(a), "max_uses_per_party 0: %s can never be allowed", a)
			}
		}
		if s.owns("output") && s.output.Kinds != nil && len(s.output.Kinds) == 0 {
			l.warn(s.prefix+"output.kinds", "empty list: no output may ever be created")
		}
	}
	reach := reachableKinds(p)
	for k := range p.derive {
		if !reach[k] {
			l.warn("derive."+string(k), "no output of kind %s can ever be derived (output.kinds), so this derive rule never applies", k)
		}
	}
	if raw.TEE != nil && raw.TEE.Types != nil && len(raw.TEE.Types) == 0 {
		l.warn("tee.types", "empty list: no TEE is acceptable, nothing can ever run")
	}
}

// owns reports whether a section sets a field itself rather than inheriting it.
func (s *section) owns(field string) bool { return s.own == nil || s.own[field] }

// reachableKinds returns the kinds of Pads that can be derived from p's Pad at any depth. A Pad is
// governed by the set of sections its derivation path collects (sectionsFor); the kinds it may
// output are the intersection of their output.kinds, and each output adds its kind's derive rule.
// The sets are few (at most the base and one rule per kind), so the search visits each once.
func reachableKinds(p *Policy) map[Kind]bool {
	reach := map[Kind]bool{}
	type state struct{ first, later kindSet }
	seen := map[state]bool{}
	var visit func(sections []*section, st state, dist int)
	visit = func(sections []*section, st state, dist int) {
		for _, k := range allowedKinds(sections).list() {
			reach[k] = true
			next := state{st.first, st.later}
			if dist == 0 {
				next.first |= kindBit(k)
			} else {
				next.later |= kindBit(k)
			}
			if !seen[next] {
				seen[next] = true
				visit(p.sectionsFor(next.first, next.later, 1), next, 1)
			}
		}
	}
	visit([]*section{p.base}, state{}, 0)
	return reach
}

// allowedKinds returns the output kinds every section allows.
func allowedKinds(sections []*section) kindSet {
	all := kindSetOf(Kinds)
	for _, s := range sections {
		if s.output.Kinds != nil {
			all &= kindSetOf(s.output.Kinds)
		}
	}
	return all
}

var partyRef = regexp.MustCompile(`Styx::Party::"([^"\\]*)"`)

// literals checks party ids inside rule text: Cedar accepts any string as an entity id, but an id
// with a typo never matches anyone. (Malformed datetime literals are already rejected by the
// schema validator at parse time.)
func (l *linter) literals(raw *rawDocument) {
	texts := map[string]string{"rules": raw.Rules}
	for k, d := range raw.Derive {
		if d.Rules != nil {
			texts["derive."+k+".rules"] = *d.Rules
		}
	}
	for path, text := range texts {
		for _, m := range partyRef.FindAllStringSubmatch(text, -1) {
			if _, err := party.ParseID(m[1]); err != nil || !strings.HasPrefix(m[1], party.IDPrefix) {
				l.warn(path, "Styx::Party::%q is not a party id (styxid1…), so this rule never matches it", m[1])
			}
		}
	}
}

func derivedSections(p *Policy) []*section {
	var out []*section
	for _, k := range Kinds {
		if s, ok := p.derive[k]; ok {
			out = append(out, s)
		}
	}
	return out
}
