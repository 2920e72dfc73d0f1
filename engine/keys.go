package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/styx-tee/styx/api"

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
	if e.failShred != nil {
		if err := e.failShred(id); err != nil {
			return err
		}
	}
	return e.st.Purge(ctx, store.DataKeys, id)
}

// ErrShredded is returned (wrapped) for a derived Pad whose data key was destroyed by a
// revocation or a retention deletion.
var ErrShredded = errShredded

// VerifyPad opens a stored Pad inside the TEE exactly as a job would, reads the whole payload
// and discards it: every chunk authenticates and the blob is the Pad its record names. No
// policy is consulted and no plaintext leaves the node; it is for operators and tests checking
// the node's own state (after a crash, say). A derived Pad whose key was destroyed fails with
// an error wrapping ErrShredded; a deleted Pad with one wrapping api.ErrNotFound.
func (e *Engine) VerifyPad(ctx context.Context, id string) error {
	rec, err := e.padRecord(ctx, id)
	if err != nil {
		return err
	}
	if !rec.Deleted.IsZero() {
		return api.Errorf(api.ErrNotFound, "Pad %s was deleted at %s", id, rec.Deleted.Format(time.RFC3339))
	}
	rc, pt, err := e.openPad(ctx, rec)
	if err != nil {
		return fmt.Errorf("engine: open Pad %s: %w", id, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, pt); err != nil {
		return fmt.Errorf("engine: read Pad %s: %w", id, err)
	}
	return nil
}
