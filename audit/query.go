package audit

import (
	"context"
	"iter"
)

// Scan yields the entries from index from up to the log's size when iteration reaches it. It
// stops at the first error, which it yields.
func (l *Log) Scan(ctx context.Context, from int64) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if from < 0 {
			from = 0
		}
		for i := from; i < l.Size(); i++ {
			if err := ctx.Err(); err != nil {
				yield(Entry{}, err)
				return
			}
			e, err := l.Read(i)
			if !yield(e, err) || err != nil {
				return
			}
		}
	}
}

// Query returns up to limit entries from index from on whose events satisfy match (all if match
// is nil; no limit if limit <= 0), and the index to resume from.
func (l *Log) Query(ctx context.Context, from int64, limit int, match func(*Event) bool) ([]Entry, int64, error) {
	var out []Entry
	next := max(from, 0)
	for e, err := range l.Scan(ctx, from) {
		if err != nil {
			return out, next, err
		}
		next = e.Index + 1
		if match == nil || match(e.Event) {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, next, nil
}

// TouchingAny returns a Query predicate matching events that name any of pads: the engine passes
// an owner's Pads together with all their descendants.
func TouchingAny(pads ...string) func(*Event) bool {
	set := make(map[string]struct{}, len(pads))
	for _, p := range pads {
		set[p] = struct{}{}
	}
	return func(ev *Event) bool {
		for _, p := range ev.Pads {
			if _, ok := set[p]; ok {
				return true
			}
		}
		return false
	}
}
