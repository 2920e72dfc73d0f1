package policy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
	"github.com/cedar-policy/cedar-go/x/exp/schema"
	"github.com/cedar-policy/cedar-go/x/exp/schema/validate"
)

// CedarSchema is the Cedar schema every policy's rules are validated against (docs/policy.md).
const CedarSchema = `namespace Styx {
  entity Group;
  entity Party in [Group];
  entity Pad { kind: String, owner: Party, depth: Long };
  type Uses = { use: Long, query: Long, release: Long, derive: Long };
  type Context = {
    now: __cedar::datetime,
    purpose: String,
    program: String,
    job: String,
    uses: Uses,
    party_uses: Uses,
    depth: Long,
    tee: { type: String, measurement: String, debug: Bool, simulated: Bool, tcb: Long },
    output: { kind: String, bytes: Long, aggregation: Long, recipients: Set<Party> },
  };
  action "use", "query", "release", "derive" appliesTo { principal: Party, resource: Pad, context: Context };
}`

const (
	maxRules        = 256
	maxCedarNesting = 64 // cedar-go parses and evaluates recursively; deep nesting costs time and stack
)

// tooDeep scans Cedar text for (, [ and { nested deeper than max outside string literals, and
// returns the 1-based position where the limit is crossed.
func tooDeep(src string, max int) (line, col int, ok bool) {
	depth, line, col := 0, 1, 0
	inString, escaped := false, false
	for _, r := range src {
		col++
		switch {
		case r == '\n':
			line, col = line+1, 0
		case inString && escaped:
			escaped = false
		case inString && r == '\\':
			escaped = true
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			if depth++; depth > max {
				return line, col, false
			}
		case r == ')' || r == ']' || r == '}':
			depth--
		}
	}
	return 0, 0, true
}

var cedarValidator = sync.OnceValue(func() *validate.Validator {
	var s schema.Schema
	if err := s.UnmarshalCedar([]byte(CedarSchema)); err != nil {
		panic("policy: built-in Cedar schema does not parse: " + err.Error())
	}
	r, err := s.Resolve()
	if err != nil {
		panic("policy: built-in Cedar schema does not resolve: " + err.Error())
	}
	return validate.New(r)
})

// cedarLanguage compiles rules written in Cedar and validates them against CedarSchema.
type cedarLanguage struct{}

type cedarRule struct {
	id     types.PolicyID
	policy *cedar.Policy
	pos    Pos
	forbid bool
}

type cedarRules struct {
	set    *cedar.PolicySet
	byID   map[types.PolicyID]*cedarRule
	groups []string
	never  []string   // "id (pos)" of rules whose conditions are constantly false
	loose  []string   // "id (pos)" of permits that let a program run on the data without naming it
	use    contextUse // the context attributes the rules read
}

var cedarErrPos = regexp.MustCompile(`at <input>:(\d+):(\d+)`)
var groupRef = regexp.MustCompile(`Styx::Group::"([^"\\]*)"`)

func (cedarLanguage) Compile(src string, origin Origin) (Rules, error) {
	if line, col, ok := tooDeep(src, maxCedarNesting); !ok {
		e := &SyntaxError{Field: "rules", Msg: fmt.Sprintf("brackets nested more than %d deep", maxCedarNesting)}
		fmt.Sscanf(string(origin.Map(line, col)), "%d:%d", &e.Line, &e.Column)
		return nil, e
	}
	list, err := cedar.NewPolicyListFromBytes("", []byte(src))
	if err != nil {
		return nil, cedarSyntaxError(err, origin)
	}
	if len(list) > maxRules {
		return nil, &SyntaxError{Field: "rules", Msg: fmt.Sprintf("%d rules, more than the %d allowed", len(list), maxRules)}
	}
	r := &cedarRules{set: cedar.NewPolicySet(), byID: map[types.PolicyID]*cedarRule{}}
	for i, p := range list {
		pp := p.Position()
		rule := &cedarRule{id: types.PolicyID(fmt.Sprintf("rule%d", i)), policy: p, pos: origin.Map(pp.Line, pp.Column), forbid: p.Effect() == cedar.Forbid}
		if id, ok := p.Annotations()["id"]; ok && id != "" {
			rule.id = types.PolicyID(id)
		}
		if _, dup := r.byID[rule.id]; dup {
			return nil, &SyntaxError{Field: "rules", Msg: fmt.Sprintf("%s: two rules have the id %q", rule.pos, rule.id)}
		}
		ast := (*xast.Policy)(p.AST())
		if err := cedarValidator().Policy(string(rule.id), ast); err != nil {
			return nil, ruleError(rule.pos, rule.id, err)
		}
		if constantlyFalse(ast) {
			r.never = append(r.never, fmt.Sprintf("%s (%s)", rule.id, rule.pos))
		}
		if unpinned(ast) {
			r.loose = append(r.loose, fmt.Sprintf("%s (%s)", rule.id, rule.pos))
		}
		r.use |= contextUseOf(ast)
		r.set.Add(rule.id, p)
		r.byID[rule.id] = rule
	}
	seen := map[string]bool{}
	for _, m := range groupRef.FindAllStringSubmatch(src, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			r.groups = append(r.groups, m[1])
		}
	}
	sort.Strings(r.groups)
	return r, nil
}

func cedarSyntaxError(err error, origin Origin) error {
	msg := err.Error()
	e := &SyntaxError{Field: "rules", Msg: "cedar: " + msg}
	if m := cedarErrPos.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		p := string(origin.Map(line, col))
		fmt.Sscanf(p, "%d:%d", &e.Line, &e.Column)
		e.Msg = "cedar: " + strings.TrimPrefix(cedarErrPos.ReplaceAllString(msg, "at "+p), "parser error: ")
	}
	return e
}

func ruleError(pos Pos, id types.PolicyID, err error) error {
	e := &SyntaxError{Field: "rules", Msg: fmt.Sprintf("rule %q does not fit the Styx schema: %s", id, strings.ReplaceAll(err.Error(), "\n", "; "))}
	fmt.Sscanf(string(pos), "%d:%d", &e.Line, &e.Column)
	return e
}

// constantlyFalse reports whether a rule has a `when { false }` or `unless { true }` condition.
func constantlyFalse(p *xast.Policy) bool {
	for _, c := range p.Conditions {
		if v, ok := c.Body.(xast.NodeValue); ok {
			if b, ok := v.Value.(types.Boolean); ok && bool(b) != bool(c.Condition) {
				return true
			}
		}
	}
	return false
}

// NeverMatch returns the rules whose conditions are constantly false (for lint).
func (r *cedarRules) NeverMatch() []string { return r.never }

// Unpinned returns the permits that let a program run on the data (use, derive or query)
// without a condition on context.program (for lint).
func (r *cedarRules) Unpinned() []string { return r.loose }

// programActions are the actions whose requests name the program that will run on the data.
var programActions = []Action{ActionUse, ActionDerive, ActionQuery}

// unpinned reports whether p is a permit that can match a use, derive or query request and
// whose conditions never read context.program: any program at all may then run on the data.
// Comments are not part of the AST, so a commented-out pin does not count.
func unpinned(p *xast.Policy) bool {
	if p.Effect != xast.EffectPermit || !coversProgramAction(p.Action) {
		return false
	}
	for _, c := range p.Conditions {
		pinned := false
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			if a, ok := n.(xast.NodeTypeAccess); ok && a.Value == "program" {
				if v, ok := a.Arg.(xast.NodeTypeVariable); ok && v.Name == "context" {
					pinned = true
				}
			}
			return !pinned
		})
		if pinned {
			return false
		}
	}
	return true
}

// coversProgramAction reports whether an action scope can match use, derive or query.
func coversProgramAction(s xast.IsActionScopeNode) bool {
	names := func(es ...types.EntityUID) bool {
		for _, e := range es {
			if slices.Contains(programActions, Action(e.ID)) {
				return true
			}
		}
		return false
	}
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		return names(s.Entity)
	case xast.ScopeTypeInSet:
		return names(s.Entities...)
	}
	return true // all actions, or an action group: assume it can
}

func (r *cedarRules) Len() int            { return len(r.byID) }
func (r *cedarRules) GroupRefs() []string { return r.groups }

func (r *cedarRules) Evaluate(in *RuleInput) (bool, []Reason) {
	req := cedar.Request{
		Principal: types.NewEntityUID("Styx::Party", types.String(in.Principal)),
		Action:    types.NewEntityUID("Styx::Action", types.String(in.Request.Action)),
		Resource:  types.NewEntityUID("Styx::Pad", types.String(in.Pad.ID)),
		Context:   cedarContextFor(in, r.use),
	}
	ents := &cedarEntities{principal: req.Principal, resource: req.Resource, in: in}
	dec, diag := cedar.Authorize(r.set, ents, req)
	var reasons []Reason
	for _, e := range diag.Errors {
		rule := r.byID[e.PolicyID]
		reasons = append(reasons, Reason{Pad: in.Source, Rule: string(e.PolicyID), Pos: rule.pos, Effect: EffectError,
			Text: "rule could not be evaluated (" + e.Message + "), so the request is denied"})
	}
	for _, d := range diag.Reasons {
		rule := r.byID[d.PolicyID]
		if rule.forbid {
			reasons = append(reasons, Reason{Pad: in.Source, Rule: string(d.PolicyID), Pos: rule.pos, Effect: EffectForbid, Text: "forbidden by this rule"})
		} else if len(diag.Errors) == 0 {
			reasons = append(reasons, Reason{Pad: in.Source, Rule: string(d.PolicyID), Pos: rule.pos, Effect: EffectPermit, Text: "permitted by this rule"})
		}
	}
	if dec == cedar.Deny && len(diag.Reasons) == 0 && len(diag.Errors) == 0 {
		reasons = append(reasons, Reason{Pad: in.Source, Rule: "rules", Effect: EffectDeny,
			Text: fmt.Sprintf("no rule permits %s by %s", in.Request.Action, shortID(in.Principal))})
	}
	return dec == cedar.Allow && len(diag.Errors) == 0, reasons
}

func shortID(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
