package engine

import (
	"context"
	"time"

	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/store"
)

// sweep deletes Pads past their retention once a minute until ctx ends.
func (e *Engine) sweep(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := e.SweepRetention(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("retention sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepRetention deletes every Pad whose retention has passed: its blob and, for a derived Pad,
// its data key. The record stays, marked deleted, so lineage still shows it; each deletion is
// audited. It returns the ids deleted.
func (e *Engine) SweepRetention(ctx context.Context) ([]string, error) {
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, r := range recs {
		if !r.Deleted.IsZero() {
			continue
		}
		ret, err := e.retention(ctx, r.ID)
		if err != nil || ret == 0 || e.now().Before(r.Created.Add(ret)) {
			continue
		}
		if r.Derived {
			if err := e.shred(ctx, r.ID); err != nil && ctx.Err() != nil {
				return deleted, err
			}
		}
		if err := e.blobs.Delete(ctx, padBlob(r.ID)); err != nil {
			return deleted, err
		}
		if err := updateJSON(ctx, e, store.Pads, r.ID, func(p *padRecord) error {
			p.Deleted = e.now().UTC()
			return nil
		}); err != nil {
			return deleted, err
		}
		if _, err := e.audit.Append(ctx, audit.Event{Kind: audit.KindDelete, Pads: []string{r.ID},
			Reasons: []string{"retention of " + ret.String() + " passed"}}); err != nil {
			return deleted, err
		}
		deleted = append(deleted, r.ID)
	}
	return deleted, nil
}

// retention is the shortest retention of any policy governing the Pad (0: keep).
func (e *Engine) retention(ctx context.Context, id string) (time.Duration, error) {
	ch, err := e.loadChain(ctx, id)
	if err != nil {
		return 0, err
	}
	var ret time.Duration
	for _, s := range ch.pc.Sources {
		if r := s.Policy.Lifecycle().Retention; r > 0 && (ret == 0 || r < ret) {
			ret = r
		}
	}
	return ret, nil
}
