package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go/types"
	"github.com/styx-tee/styx/party"
	"gopkg.in/yaml.v3"
)

// validator turns a raw document into a Policy, keeping the first error with its position.
type validator struct {
	root  *yaml.Node
	src   []byte
	pos   map[string]Pos
	langs map[string]Language
	err   error
}

var (
	groupName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)
	hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hexString = regexp.MustCompile(`^[0-9a-f]{2,256}$`)
)

// isHexSHA256 reports what hexSHA256 matches, without the regexp machinery: every decision
// checks its request's program, and a query's decision is on the hot path.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// fail records the first error, positioned at the node at path (dotted keys; numeric parts index lists).
func (v *validator) fail(path, format string, args ...any) {
	if v.err != nil {
		return
	}
	n := v.node(path)
	e := &SyntaxError{Field: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	v.err = e
}

// node finds the node at a dotted path, where numeric parts index lists.
func (v *validator) node(path string) *yaml.Node {
	n := v.root
	if path == "" {
		return n
	}
	for _, part := range strings.Split(path, ".") {
		if n == nil {
			return nil
		}
		if i, err := strconv.Atoi(part); err == nil && n.Kind == yaml.SequenceNode {
			if i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			continue
		}
		n = lookup(n, part)
	}
	return n
}

// mark remembers the position of a field so that reasons can point at it.
func (v *validator) mark(path string) {
	if n := v.node(path); n != nil {
		v.pos[path] = mkPos(n.Line, n.Column)
	}
}

func (v *validator) policy(raw *rawDocument) *Policy {
	p := &Policy{version: raw.Version, pos: v.pos}
	if raw.Version == 0 {
		v.fail("version", "missing or zero: a policy needs a version of 1 or more")
	}
	p.owner = v.partyID("owner", raw.Owner)
	v.groups(p, raw.Groups)
	lang := v.language(raw.Language)
	p.base = v.section("", lang, raw.Rules, raw.Lifecycle, raw.Input, raw.Output)
	p.derive = map[Kind]*section{}
	for name, d := range raw.Derive {
		k := Kind(name)
		path := "derive." + name
		if !k.valid() {
			v.fail(path, "unknown output kind %q (known: %s)", name, joinKinds(Kinds))
			continue
		}
		p.derive[k] = v.deriveSection(p.base, path, lang, d)
	}
	p.tee = v.tee(raw.TEE)
	return p
}

func (v *validator) partyID(path, s string) party.ID {
	if s == "" {
		v.fail(path, "missing party id")
		return party.ID{}
	}
	id, err := party.ParseID(s)
	if err != nil {
		v.fail(path, "%v", err)
	}
	return id
}

func (v *validator) groups(p *Policy, raw map[string][]string) {
	p.groups = map[string][]party.ID{}
	p.memberOf = map[party.ID][]string{}
	for name, members := range raw {
		path := "groups." + name
		if !groupName.MatchString(name) {
			v.fail(path, "group name %q must start with a letter and use only letters, digits, '_' and '-' (at most 64)", name)
		}
		if len(members) == 0 {
			v.fail(path, "group %q has no members", name)
		}
		for i, m := range members {
			id := v.partyID(fmt.Sprintf("%s.%d", path, i), m)
			if slices.Contains(p.groups[name], id) {
				v.fail(fmt.Sprintf("%s.%d", path, i), "%s is listed twice", m)
			}
			p.groups[name] = append(p.groups[name], id)
			p.memberOf[id] = append(p.memberOf[id], name)
		}
	}
	p.cedarParents = make(map[party.ID]types.EntityUIDSet, len(p.memberOf))
	for id, gs := range p.memberOf {
		slices.Sort(gs)
		p.cedarParents[id] = groupSet(gs)
	}
}

func (v *validator) language(name string) Language {
	if name == "" || name == "cedar" {
		return cedarLanguage{}
	}
	if l, ok := v.langs[name]; ok {
		return l
	}
	v.fail("language", "unknown rule language %q (known: cedar)", name)
	return cedarLanguage{}
}

func (v *validator) section(prefix string, lang Language, rules string, lc *rawLifecycle, in []rawInputRule, out *rawOutput) *section {
	s := &section{prefix: prefix}
	s.rules = v.rules(prefix+"rules", lang, rules)
	s.lifecycle = v.lifecycle(prefix+"lifecycle", lc)
	s.input = v.inputRules(prefix+"input", in)
	s.output = v.output(prefix+"output", out)
	return s
}

// deriveSection overlays a derive rule on the base section: each field present replaces the base
// field; each absent field is inherited.
func (v *validator) deriveSection(base *section, path string, lang Language, d rawDerive) *section {
	s := *base
	s.prefix = path + "."
	s.own = map[string]bool{"rules": d.Rules != nil, "lifecycle": d.Lifecycle != nil, "output": d.Output != nil}
	if d.Rules != nil {
		s.rules = v.rules(path+".rules", lang, *d.Rules)
	}
	if d.Lifecycle != nil {
		s.lifecycle = v.lifecycle(path+".lifecycle", d.Lifecycle)
	}
	if v.node(path+".input") != nil {
		s.input = v.inputRules(path+".input", d.Input)
	}
	if d.Output != nil {
		s.output = v.output(path+".output", d.Output)
	}
	return &s
}

func (v *validator) rules(path string, lang Language, src string) Rules {
	if strings.TrimSpace(src) == "" {
		return emptyRules{}
	}
	n := v.node(path)
	origin := Origin{}
	if n != nil {
		origin = originOf(n, v.src)
	}
	r, err := lang.Compile(src, origin)
	if err != nil {
		if v.err == nil {
			v.err = err
		}
		return emptyRules{}
	}
	return r
}

func (v *validator) lifecycle(path string, raw *rawLifecycle) Lifecycle {
	var lc Lifecycle
	if raw == nil {
		return lc
	}
	lc.NotBefore = v.time(path+".not_before", raw.NotBefore)
	lc.Expires = v.time(path+".expires", raw.Expires)
	if !lc.NotBefore.IsZero() && !lc.Expires.IsZero() && !lc.Expires.After(lc.NotBefore) {
		v.fail(path+".expires", "expires (%s) is not after not_before (%s): the Pad could never be used", raw.Expires, raw.NotBefore)
	}
	lc.MaxUses = v.uses(path+".max_uses", raw.MaxUses)
	lc.MaxUsesPerParty = v.uses(path+".max_uses_per_party", raw.MaxUsesPerParty)
	if raw.Retention != "" {
		d, err := parseDuration(raw.Retention)
		if err != nil || d <= 0 {
			v.fail(path+".retention", "want a positive duration such as 720h or 90d, got %q", raw.Retention)
		}
		lc.Retention = d
		v.mark(path + ".retention")
	}
	return lc
}

func (v *validator) time(path, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		v.fail(path, "want an RFC 3339 time such as 2027-01-31T00:00:00Z, got %q", s)
	}
	v.mark(path)
	return t.UTC()
}

func (v *validator) uses(path string, raw map[string]uint64) map[Action]uint64 {
	if raw == nil {
		return nil
	}
	m := make(map[Action]uint64, len(raw))
	for name, n := range raw {
		if !Action(name).valid() {
			v.fail(path+"."+name, "unknown action %q (known: use, query, release, derive)", name)
		}
		m[Action(name)] = n
		v.mark(path + "." + name)
	}
	return m
}

// parseDuration accepts Go durations plus whole days ("90d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func joinKinds(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
