package policy

import (
	"errors"
	"fmt"
	"slices"
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
	case req.Program != "" && !isHexSHA256(req.Program):
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
		if err := checkPathKinds(&s, ch.Pad.Kind); err != nil {
			return err
		}
		seen[s.Pad.ID] = true
	}
	return nil
}

// checkPathKinds rejects path kinds that cannot describe derivation paths from s to a Pad of kind
// k: the kinds governing a derived Pad must be known, never guessed.
func checkPathKinds(s *Source, k Kind) error {
	for _, kinds := range [2][]Kind{s.FirstKinds, s.LaterKinds} {
		for _, pk := range kinds {
			if !pk.valid() {
				return fmt.Errorf("source %q: unknown kind %q on its derivation paths", s.Pad.ID, pk)
			}
		}
	}
	first, later := s.pathKinds(k)
	switch {
	case s.Distance == 0 && first|later != 0:
		return fmt.Errorf("source %q is the requested pad but has derivation path kinds", s.Pad.ID)
	case s.Distance == 0:
		return nil
	case s.Distance == 1 && later != 0:
		return fmt.Errorf("source %q is one derivation step away but has kinds two or more steps away", s.Pad.ID)
	case first == 0:
		return fmt.Errorf("source %q is %d derivation steps away but the kinds of its children on the paths are not given", s.Pad.ID, s.Distance)
	case s.Distance >= 2 && later == 0:
		return fmt.Errorf("source %q is %d derivation steps away but the kinds two or more steps away are not given", s.Pad.ID, s.Distance)
	case !(first | later).has(k):
		return fmt.Errorf("source %q: the requested pad's kind %q is not on its derivation paths", s.Pad.ID, k)
	}
	return nil
}

// A kindSet is a set of Kinds, one bit per entry of Kinds.
type kindSet uint8

func (s kindSet) has(k Kind) bool { return s&kindBit(k) != 0 }

func kindBit(k Kind) kindSet {
	if i := slices.Index(Kinds, k); i >= 0 {
		return 1 << i
	}
	return 0
}

func kindSetOf(ks []Kind) kindSet {
	var s kindSet
	for _, k := range ks {
		s |= kindBit(k)
	}
	return s
}

// list returns the kinds of s in the order of Kinds (nil when s is empty).
func (s kindSet) list() []Kind {
	var out []Kind
	for _, k := range Kinds {
		if s.has(k) {
			out = append(out, k)
		}
	}
	return out
}

// pathKinds returns the kinds on src's derivation paths to a Pad of kind padKind (docs/policy.md
// §Derivation): at distance 1 the only path is the direct one, so an empty FirstKinds means padKind.
func (src *Source) pathKinds(padKind Kind) (first, later kindSet) {
	first, later = kindSetOf(src.FirstKinds), kindSetOf(src.LaterKinds)
	if src.Distance == 1 && first == 0 && later == 0 {
		first = kindBit(padKind)
	}
	return first, later
}

// sectionsFor returns the sections of p that govern a request on a Pad at distance dist from p's Pad,
// reached by derivation paths whose first steps lead to Pads of the kinds in first and whose later
// steps lead to Pads of the kinds in later. On p's Pad itself (dist 0) the base section governs.
// Otherwise each first step brings its kind's derive rule, or the base section without one; each
// later step brings its kind's derive rule if there is one and nothing new otherwise (the Pad
// inherits its parent's restrictions, which are already in the list). A request must satisfy every
// section returned; each appears once, the base first, then derive rules in the order of Kinds.
func (p *Policy) sectionsFor(first, later kindSet, dist int) []*section {
	if dist == 0 {
		return []*section{p.base}
	}
	var out []*section
	for _, k := range Kinds {
		if _, ok := p.derive[k]; first.has(k) && !ok {
			out = append(out, p.base)
			break
		}
	}
	for _, k := range Kinds {
		if s, ok := p.derive[k]; ok && (first.has(k) || later.has(k)) {
			out = append(out, s)
		}
	}
	return out
}

// earlier returns the earlier of two instants, ignoring zero ones.
func earlier(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
