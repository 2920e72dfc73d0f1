package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/store"
)

// errShredded reports a derived Pad whose data key was destroyed: nobody, the node included,
// can decrypt it any more.
var errShredded = errors.New("data key destroyed (crypto-shredded): the Pad can never be decrypted again")

// putDataKey keeps a derived Pad's data key in the store, sealed under the state key.
func (e *Engine) putDataKey(ctx context.Context, id string, dk *pad.DataKey) error {
	_, err := e.st.Create(ctx, store.DataKeys, id, e.box.seal(store.DataKeys, id, dk[:]))
	return err
}

// dataKey returns a derived Pad's data key.
func (e *Engine) dataKey(ctx context.Context, id string) (*pad.DataKey, error) {
	raw, _, err := e.st.Get(ctx, store.DataKeys, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("Pad %s: %w", id, errShredded)
	}
	if err != nil {
		return nil, err
	}
	b, err := e.box.open(store.DataKeys, id, raw)
	if err != nil {
		return nil, err
	}
	if len(b) != len(pad.DataKey{}) {
		return nil, fmt.Errorf("%w: data key of %s has %d bytes", errTamperedState, id, len(b))
	}
	var dk pad.DataKey
	copy(dk[:], b)
	return &dk, nil
}

// shred destroys a derived Pad's data key and every stored revision of it.
func (e *Engine) shred(ctx context.Context, id string) error {
	return e.st.Purge(ctx, store.DataKeys, id)
}
