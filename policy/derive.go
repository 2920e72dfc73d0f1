package policy

import (
	"fmt"

	"github.com/styx-tee/styx/party"
)

// DerivedChain returns the chain of a new Pad of kind k derived from parents (the chains of the
// Pads the job actually read before writing the output): every source of every parent, at one more
// step of distance (the longest path when a source is reached several ways), and depth 1 + the
// deepest parent. The output pipeline records the sources' ids with the derived Pad; their policies
// are looked up again, current, at every later decision.
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
			s.Distance++
			if i, ok := index[s.Pad.ID]; ok {
				ch.Sources[i].Distance = max(ch.Sources[i].Distance, s.Distance)
				continue
			}
			index[s.Pad.ID] = len(ch.Sources)
			ch.Sources = append(ch.Sources, s)
		}
	}
	if len(ch.Sources) > MaxAncestors {
		return nil, fmt.Errorf("policy: derived pad would have %d sources, more than the %d allowed: %w", len(ch.Sources), MaxAncestors, ErrInvalidRequest)
	}
	return ch, nil
}
