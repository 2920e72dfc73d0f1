package store

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchChanges calls changed after every write to one of buckets (put, delete or purge) stored
// from now on, by this node or any other of the cluster, until ctx ends. It reads no value,
// only that a key changed. changed runs on one goroutine per bucket; a slow one holds back that
// bucket's notifications, not the writes.
func (s *Store) WatchChanges(ctx context.Context, changed func(Bucket), buckets ...Bucket) error {
	var watchers []jetstream.KeyWatcher
	stopAll := func() {
		for _, w := range watchers {
			w.Stop()
		}
	}
	for _, b := range buckets {
		kv, err := s.bucket(b)
		if err != nil {
			stopAll()
			return err
		}
		w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly(), jetstream.MetaOnly())
		if err != nil {
			stopAll()
			return fmt.Errorf("store: watch %s: %w", b, err)
		}
		watchers = append(watchers, w)
	}
	for i, w := range watchers {
		b := buckets[i]
		go func() {
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case e, ok := <-w.Updates():
					if !ok {
						return // the store closed
					}
					if e != nil {
						changed(b)
					}
				}
			}
		}()
	}
	return nil
}
