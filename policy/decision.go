package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/styx-tee/styx/party"
)

// An Effect classifies a Reason.
type Effect string

// The effects of reasons. Any reason other than permit makes the decision a deny.
const (
	EffectPermit Effect = "permit" // a rule permitted the request
	EffectForbid Effect = "forbid" // a forbid rule matched
	EffectDeny   Effect = "deny"   // nothing permitted it, or a structured check (lifecycle, output, tee) failed
	EffectError  Effect = "error"  // the request or a rule could not be evaluated
)

// A Reason says which Pad and which rule contributed to a decision, and why.
type Reason struct {
	Pad    string `json:"pad,omitempty"` // the source Pad whose policy gave the reason
	Rule   string `json:"rule"`          // a rule id ("@id" or "ruleN") or a field path ("lifecycle.expires")
	Pos    Pos    `json:"pos,omitempty"` // the rule's position in the source's policy document
	Effect Effect `json:"effect"`
	Text   string `json:"text"`
}

func (r Reason) String() string {
	var b strings.Builder
	b.WriteString(string(r.Effect))
	if r.Pad != "" {
		fmt.Fprintf(&b, " pad %s", r.Pad)
	}
	fmt.Fprintf(&b, " %s", r.Rule)
	if r.Pos != "" {
		fmt.Fprintf(&b, " (%s)", r.Pos)
	}
	return b.String() + ": " + r.Text
}

// A Decision is the outcome of evaluating a request over a chain. It is a value: it can be logged,
// compared and explained. A deny's obligations are informational only.
type Decision struct {
	Allow       bool        `json:"allow"`
	Action      Action      `json:"action"`
	Pad         string      `json:"pad"`
	Reasons     []Reason    `json:"reasons"`
	Obligations Obligations `json:"obligations"`
}

// Err returns nil for an allow and a *DeniedError for a deny.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	return &DeniedError{Decision: d}
}

// A Counter is a use counter the caller must reserve atomically before acting: the reservation
// fails, and the request must be denied, if the counter already reached Limit (0: no limit, count
// only).
type Counter struct {
	Key     CounterKey `json:"key"`
	Used    uint64     `json:"used"`
	Limit   uint64     `json:"limit,omitempty"`   // the strictest limit of any source
	Sources []string   `json:"sources,omitempty"` // the sources that impose Limit
}

// A SourceInputRules lists the input rules of one source that apply to this request.
type SourceInputRules struct {
	Source string      `json:"source"`
	Rules  []InputRule `json:"rules"`
}

// Obligations are what the caller must do if it acts on an allow; they combine every source's
// effective policy: all counters, the union of recipients, the strictest output limits, every
// matching input rule, the earliest expiry, the shortest retention and the strictest TEE needs.
type Obligations struct {
	Counters   []Counter          `json:"counters,omitempty"`
	Recipients []party.ID         `json:"recipients,omitempty"`
	Output     OutputRules        `json:"output"`
	Input      []SourceInputRules `json:"input,omitempty"`
	Expires    time.Time          `json:"expires,omitzero"`   // re-check: the decision lapses at this instant
	Retention  time.Duration      `json:"retention,omitzero"` // shortest retention of any source
	TEE        TEERequirements    `json:"tee"`
}

// Explain renders the decision for people: a verdict line, then each reason and obligation on its
// own line.
func (d Decision) Explain() string {
	var b strings.Builder
	verdict := "DENY"
	if d.Allow {
		verdict = "ALLOW"
	}
	fmt.Fprintf(&b, "%s %s on pad %s\n", verdict, d.Action, d.Pad)
	for _, r := range d.Reasons {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	if !d.Allow {
		return b.String()
	}
	o := d.Obligations
	for _, c := range o.Counters {
		if c.Limit == 0 {
			continue
		}
		who := ""
		if !c.Key.Party.IsZero() {
			who = " by " + shortID(c.Key.Party.String())
		}
		fmt.Fprintf(&b, "  obligation: count %s of pad %s%s: %d used, limit %d (set by %s)\n", c.Key.Action, c.Key.Pad, who, c.Used, c.Limit, strings.Join(c.Sources, ", "))
	}
	for _, r := range o.Recipients {
		fmt.Fprintf(&b, "  obligation: also release to %s\n", r)
	}
	if o.Output.Kinds != nil {
		fmt.Fprintf(&b, "  obligation: outputs only of kinds [%s]\n", joinKinds(o.Output.Kinds))
	}
	if o.Output.MaxBytes > 0 {
		fmt.Fprintf(&b, "  obligation: outputs at most %d bytes\n", o.Output.MaxBytes)
	}
	if o.Output.MinAggregation > 0 {
		fmt.Fprintf(&b, "  obligation: aggregates over at least %d rows\n", o.Output.MinAggregation)
	}
	for _, in := range o.Input {
		for _, r := range in.Rules {
			fmt.Fprintf(&b, "  obligation: input rule of pad %s: %s\n", in.Source, r.describe())
		}
	}
	if !o.Expires.IsZero() {
		fmt.Fprintf(&b, "  obligation: stop at %s (earliest expiry)\n", o.Expires.Format(time.RFC3339))
	}
	if o.Retention > 0 {
		fmt.Fprintf(&b, "  obligation: delete outputs after %s\n", o.Retention)
	}
	return b.String()
}

func (r InputRule) describe() string {
	var parts []string
	if len(r.Keep) > 0 {
		parts = append(parts, "keep columns "+strings.Join(r.Keep, ", "))
	}
	if len(r.Drop) > 0 {
		parts = append(parts, "drop columns "+strings.Join(r.Drop, ", "))
	}
	for _, f := range r.Rows {
		parts = append(parts, "rows where "+f.String())
	}
	return strings.Join(parts, "; ")
}
