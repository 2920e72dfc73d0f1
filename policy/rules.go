package policy

import (
	"bytes"

	"gopkg.in/yaml.v3"
)

// A Language compiles the "rules" text of a policy. Cedar is the default; another language can be
// plugged in through Parser.Languages.
type Language interface {
	// Compile compiles rule text. origin maps positions in src to positions in the document;
	// errors should be *SyntaxError values with document positions.
	Compile(src string, origin Origin) (Rules, error)
}

// Rules are compiled rules, immutable and safe for concurrent use.
type Rules interface {
	// Evaluate decides one request for one source. It returns whether the rules permit it and the
	// reasons: the matching permits on allow; the matching forbids, the errors, or a note that
	// nothing matched on deny. An evaluation error must deny.
	Evaluate(in *RuleInput) (bool, []Reason)
	// GroupRefs returns the group names the rules mention (for lint).
	GroupRefs() []string
	// Len returns the number of rules.
	Len() int
}

// RuleInput is what rules see for one source of one request.
type RuleInput struct {
	Request   *Request
	Principal string            // the principal's party id string
	Groups    []string          // the groups of this policy that the principal belongs to
	Pad       PadRef            // the requested Pad
	PadOwner  string            // the requested Pad's owner id string
	Source    string            // the source Pad id (for reasons)
	Depth     int               // derivation distance from the source to the requested Pad
	Uses      map[Action]uint64 // uses so far of the requested Pad under this source, all parties
	PartyUses map[Action]uint64 // the same, by the principal only

	policy *Policy   // the source's policy (for precomputed, language-specific data)
	memo   *ruleMemo // per-decision cache shared by every source
}

// Origin locates rule text inside a document so that rule positions can be reported in document
// coordinates.
type Origin struct {
	Line   int  // document line just before the text's first line
	Column int  // columns to add to a rule column
	Block  bool // a block scalar: every line is indented by Column
}

// Map converts a 1-based line and column in rule text to a document position.
func (o Origin) Map(line, col int) Pos {
	if o.Block || line == 1 {
		return mkPos(o.Line+line, o.Column+col)
	}
	return mkPos(o.Line+line, col)
}

// originOf computes the origin of a scalar node's text in src.
func originOf(n *yaml.Node, src []byte) Origin {
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		lines := bytes.Split(src, []byte("\n"))
		for i := n.Line; i < len(lines); i++ {
			l := lines[i]
			if len(bytes.TrimSpace(l)) == 0 {
				continue
			}
			return Origin{Line: n.Line, Column: len(l) - len(bytes.TrimLeft(l, " ")), Block: true}
		}
		return Origin{Line: n.Line, Block: true}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return Origin{Line: n.Line - 1, Column: n.Column}
	}
	return Origin{Line: n.Line - 1, Column: n.Column - 1}
}

// emptyRules permit nothing.
type emptyRules struct{}

func (emptyRules) Evaluate(in *RuleInput) (bool, []Reason) {
	return false, []Reason{{Pad: in.Source, Rule: "rules", Effect: EffectDeny, Text: "the policy has no rules, so nothing is permitted"}}
}
func (emptyRules) GroupRefs() []string { return nil }
func (emptyRules) Len() int            { return 0 }
