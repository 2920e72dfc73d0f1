package engine

import (
	"context"
	"errors"
	"fmt"
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

// SweepRetention deletes every Pad whose retention has passed: for a derived Pad, its data key
// first and its warm query instances, then its blob. The record stays, marked deleted, so lineage
// still shows it; each deletion is audited. A Pad is marked deleted and audited only once its key
// is gone: one whose key could not be destroyed is left as it is, to be retried by the next
// sweep, and the error says so. It returns the ids deleted.
func (e *Engine) SweepRetention(ctx context.Context) ([]string, error) {
	recs, err := e.allPads(ctx)
	if err != nil {
		return nil, err
	}
	var deleted []string
	var failed error
	for _, r := range recs {
		if !r.Deleted.IsZero() {
			continue
		}
		ret, err := e.retention(ctx, r.ID)
		if err != nil || ret == 0 || e.now().Before(r.Created.Add(ret)) {
			continue
		}
		if r.Derived {
			if err := e.shred(ctx, r.ID); err != nil {
				if ctx.Err() != nil {
					return deleted, err
				}
				e.log.Warn("retention: data key not destroyed, retried at the next sweep", "pad", r.ID, "err", err)
				failed = errors.Join(failed, fmt.Errorf("engine: retention of %s: destroy data key: %w", r.ID, err))
				continue
			}
			e.queries.drop(map[string]bool{r.ID: true})
		}
		if err := e.blobs.Delete(ctx, padBlob(r.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
			return deleted, err
		}
		// Logged before the record is marked: a crash in between logs the deletion twice, never
		// leaves a deleted Pad without its log entry.
		if _, err := e.audit.Append(ctx, audit.Event{Kind: audit.KindDelete, Pads: []string{r.ID},
			Reasons: []string{"retention of " + ret.String() + " passed"}}); err != nil {
			return deleted, err
		}
		if err := updateJSON(ctx, e, store.Pads, r.ID, func(p *padRecord) error {
			p.Deleted = e.now().UTC()
			return nil
		}); err != nil {
			return deleted, err
		}
		e.epoch.Add(1) // cached query chains still show it live
		deleted = append(deleted, r.ID)
	}
	return deleted, failed
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
