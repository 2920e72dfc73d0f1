package policy

import (
	"errors"
	"fmt"
	"time"
)

// An Engine decides requests. NewEngine returns the default one; another implementation (another
// policy model) can be substituted wherever an Engine is accepted.
type Engine interface {
	Decide(ch *Chain, req *Request) Decision
}

// NewEngine returns the default engine: for every source it checks the TEE requirements, the
// lifecycle, the output rules and the rules (Cedar by default) of the source's effective policy,
// and it denies unless every source allows. It is stateless and safe for concurrent use.
func NewEngine() Engine { return engine{} }

type engine struct{}

var _ Engine = engine{}

// Decide evaluates req over ch. It never panics on malformed input: a malformed request or chain is
// a deny whose reason says what is wrong.
func (engine) Decide(ch *Chain, req *Request) Decision {
	if ch == nil || req == nil {
		return Decision{Reasons: []Reason{{Rule: "request", Effect: EffectError, Text: "no request or no chain"}}}
	}
	d := Decision{Action: req.Action, Pad: ch.Pad.ID}
	if err := checkRequest(ch, req); err != nil {
		d.Reasons = []Reason{{Rule: "request", Effect: EffectError, Text: err.Error()}}
		return d
	}
	ev := newEvaluation(ch, req)
	allow := true
	for i := range ch.Sources {
		if !ev.source(&ch.Sources[i]) {
			allow = false
		}
	}
	d.Allow = allow
	d.Reasons = ev.reasons
	d.Obligations = ev.obligations()
	return d
}

const maxRequestString = 256

// checkRequest rejects requests and chains that cannot be evaluated meaningfully.
func checkRequest(ch *Chain, req *Request) error {
	switch {
	case req.Principal.IsZero():
		return errors.New("no principal")
	case !req.Action.valid():
		return fmt.Errorf("unknown action %q", req.Action)
	case req.Now.IsZero():
		return errors.New("no time given")
	case ch.Pad.ID == "":
		return errors.New("no pad id")
	case ch.Pad.Kind != "" && !ch.Pad.Kind.valid():
		return fmt.Errorf("unknown pad kind %q", ch.Pad.Kind)
	case len(ch.Sources) == 0:
		return errors.New("no sources: a pad needs at least one policy")
	case len(ch.Sources) > MaxAncestors:
		return fmt.Errorf("%d sources, more than the %d allowed", len(ch.Sources), MaxAncestors)
	case req.Output != nil && !req.Output.Kind.valid():
		return fmt.Errorf("unknown output kind %q", req.Output.Kind)
	case req.Output != nil && (req.Output.Bytes < 0 || req.Output.Aggregation < 0):
		return errors.New("negative output size")
	case req.Output != nil && len(req.Output.Recipients) > maxSeqEntries:
		return fmt.Errorf("%d recipients, more than the %d allowed", len(req.Output.Recipients), maxSeqEntries)
	case req.Program != "" && !hexSHA256.MatchString(req.Program):
		return errors.New("program is not a lowercase hex sha256")
	case len(req.Purpose) > maxRequestString || len(req.Job) > maxRequestString || len(req.TEE.Measurement) > maxRequestString || len(ch.Pad.ID) > maxRequestString:
		return fmt.Errorf("a purpose, job, measurement or pad id is longer than %d bytes", maxRequestString)
	}
	seen := make(map[string]bool, len(ch.Sources))
	for i, s := range ch.Sources {
		switch {
		case s.Policy == nil:
			return fmt.Errorf("source %d (%q) has no policy", i, s.Pad.ID)
		case s.Pad.ID == "":
			return fmt.Errorf("source %d has no pad id", i)
		case seen[s.Pad.ID]:
			return fmt.Errorf("source %q listed twice", s.Pad.ID)
		case s.Distance < 0:
			return fmt.Errorf("source %q has a negative distance", s.Pad.ID)
		case s.Distance == 0 && s.Pad.ID != ch.Pad.ID:
			return fmt.Errorf("source %q has distance 0 but is not pad %q", s.Pad.ID, ch.Pad.ID)
		case s.Distance > 0 && s.Pad.ID == ch.Pad.ID:
			return fmt.Errorf("pad %q is listed as its own ancestor", s.Pad.ID)
		case s.Distance > 0 && ch.Pad.Kind == "":
			return fmt.Errorf("pad %q has ancestors but no kind: a derived pad needs its output kind", ch.Pad.ID)
		}
		seen[s.Pad.ID] = true
	}
	return nil
}

// sectionFor returns the effective section of p for a Pad of kind k at distance dist from it.
func (p *Policy) sectionFor(k Kind, dist int) *section {
	if dist == 0 {
		return p.base
	}
	if s, ok := p.derive[k]; ok {
		return s
	}
	return p.base
}

// earlier returns the earlier of two instants, ignoring zero ones.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
