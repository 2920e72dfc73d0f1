package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Purge removes key and every revision of it: the current value is first
// erased in place (NATS overwrites the record on disk with random bytes),
// then a purge marker rolls up whatever else the stream still holds for the
// key. This is the crypto-shredding primitive for DataKeys: afterwards no
// revision can be read back, by this node or by anyone holding its disk
// and key. Purging a missing key is not an error.
func (s *Store) Purge(ctx context.Context, b Bucket, key string) error {
	kv, err := s.writable(b)
	if err != nil {
		return err
	}
	if err := checkKeyName(key); err != nil {
		return err
	}
	if err := s.eraseCurrent(ctx, kv, b, key); err != nil {
		return err
	}
	return mapErr(kv.Purge(ctx, key), b, key)
}

func (s *Store) eraseCurrent(ctx context.Context, kv jetstream.KeyValue, b Bucket, key string) error {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil
	}
	if err != nil {
		return mapErr(err, b, key)
	}
	err = s.streams[b].SecureDeleteMsg(ctx, e.Revision())
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("store: erase %s/%s: %w", b, key, err)
	}
	return nil
}

// History returns every revision the store still holds for key, oldest
// first (at most one live value, since buckets keep history 1, plus a
// delete or purge marker). Tests use it to check that Purge left nothing.
func (s *Store) History(ctx context.Context, b Bucket, key string) ([]uint64, error) {
	kv, err := s.bucket(b)
	if err != nil {
		return nil, err
	}
	if err := checkKeyName(key); err != nil {
		return nil, err
	}
	entries, err := kv.History(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, mapErr(err, b, key)
	}
	revs := make([]uint64, 0, len(entries))
	for _, e := range entries {
		if e.Operation() == jetstream.KeyValuePut {
			revs = append(revs, e.Revision())
		}
	}
	return revs, nil
}
