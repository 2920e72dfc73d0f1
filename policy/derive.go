package policy

import (
	"fmt"

	"github.com/styx-tee/styx/party"
)

// DerivedChain returns the chain of a new Pad of kind k derived from parents (the chains of the
// Pads the job actually read before writing the output): every source of every parent, at one more
// step of distance (the longest path when a source is reached several ways), with the kinds on its
// derivation paths extended by k, and depth 1 + the deepest parent. The output pipeline records the
// sources' ids with the derived Pad; their policies are looked up again, current, at every later
// decision.
func DerivedChain(id string, k Kind, owner party.ID, parents ...*Chain) (*Chain, error) {
	if id == "" || !k.valid() || len(parents) == 0 {
		return nil, fmt.Errorf("policy: derived pad needs an id, a known kind and parents (got %q, %q, %d): %w", id, k, len(parents), ErrInvalidRequest)
	}
	ch := &Chain{Pad: PadRef{ID: id, Kind: k, Owner: owner}}
	index := map[string]int{}
	for _, p := range parents {
		if p == nil || p.Pad.ID == id {
			return nil, fmt.Errorf("policy: pad %q cannot be its own parent: %w", id, ErrInvalidRequest)
		}
		ch.Pad.Depth = max(ch.Pad.Depth, p.Pad.Depth+1)
		for _, s := range p.Sources {
			first, later := extendPaths(&s, p.Pad.Kind, k)
			s.Distance++
			if i, ok := index[s.Pad.ID]; ok {
				prev := &ch.Sources[i]
				prev.Distance = max(prev.Distance, s.Distance)
				prev.FirstKinds = (kindSetOf(prev.FirstKinds) | first).list()
				prev.LaterKinds = (kindSetOf(prev.LaterKinds) | later).list()
				continue
			}
			s.FirstKinds, s.LaterKinds = first.list(), later.list()
			index[s.Pad.ID] = len(ch.Sources)
			ch.Sources = append(ch.Sources, s)
		}
	}
	if len(ch.Sources) > MaxAncestors {
		return nil, fmt.Errorf("policy: derived pad would have %d sources, more than the %d allowed: %w", len(ch.Sources), MaxAncestors, ErrInvalidRequest)
	}
	return ch, nil
}

// extendPaths returns the path kinds of s, a source of a parent of kind parentKind, once a Pad of
// kind k is derived from that parent: a child of the source when the parent is the source itself,
// one more later step otherwise.
func extendPaths(s *Source, parentKind, k Kind) (first, later kindSet) {
	if s.Distance == 0 {
		return kindBit(k), 0
	}
	first, later = s.pathKinds(parentKind)
	return first, later | kindBit(k)
}
