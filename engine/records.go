package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/store"
)

// padRecord is what the node keeps about a Pad besides its blob.
type padRecord struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`  // party id: the sealer, or the party a derived Pad's job ran for
	Signer       string    `json:"signer"` // party id of the header's signer (the cluster for derived Pads)
	Derived      bool      `json:"derived,omitempty"`
	Kind         string    `json:"kind,omitempty"` // output kind of a derived Pad
	Parents      []string  `json:"parents,omitempty"`
	Job          string    `json:"job,omitempty"`
	Program      string    `json:"program,omitempty"`
	ContentType  string    `json:"content_type"`
	Size         int64     `json:"size"`        // plaintext bytes
	SealedSize   int64     `json:"sealed_size"` // bytes of the sealed Pad
	Depth        int       `json:"depth"`
	PolicyDigest string    `json:"policy_digest"` // hex digest of the header's policy bytes
	Created      time.Time `json:"created"`
	Deleted      time.Time `json:"deleted,omitzero"`
	Simulated    bool      `json:"simulated,omitempty"` // derived on a simulated TEE
	// Aggregation is, for a derived aggregate, the fewest input rows read from any input it
	// was derived from: what a release holds it to against min_aggregation.
	Aggregation int64 `json:"aggregation,omitempty"`
}

func padBlob(id string) string   { return "pad-" + id }
func progBlob(sha string) string { return "prog-" + sha }
func policyKey(id string) string { return "policy." + id }
func partyKey(id string) string  { return "party." + id }

// getJSON reads, authenticates and decodes a sealed record.
func (e *Engine) getJSON(ctx context.Context, b store.Bucket, key string, v any) (uint64, error) {
	return e.getJSONIn(ctx, nil, b, key, v)
}

// getJSONIn is getJSON reading from sn if it read the record (store.ReadMany), else from the
// store. Either way the record is authenticated here.
func (e *Engine) getJSONIn(ctx context.Context, sn *store.Snapshot, b store.Bucket, key string, v any) (uint64, error) {
	raw, rev, in, err := sn.Get(b, key)
	if !in {
		raw, rev, err = e.st.Get(ctx, b, key)
	}
	if err != nil {
		return 0, err
	}
	pt, err := e.box.open(b, key, raw)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(pt, v); err != nil {
		return 0, fmt.Errorf("engine: decode %s/%s: %w", b, key, err)
	}
	return rev, nil
}

func (e *Engine) sealJSON(b store.Bucket, key string, v any) []byte {
	pt, err := json.Marshal(v)
	if err != nil {
		panic("engine: marshal record: " + err.Error()) // only our own types are marshalled
	}
	return e.box.seal(b, key, pt)
}

func (e *Engine) createJSON(ctx context.Context, b store.Bucket, key string, v any) error {
	_, err := e.st.Create(ctx, b, key, e.sealJSON(b, key, v))
	return err
}

func (e *Engine) putJSON(ctx context.Context, b store.Bucket, key string, v any) error {
	_, err := e.st.Put(ctx, b, key, e.sealJSON(b, key, v))
	return err
}

// updateJSON applies f to the record under key with compare-and-set, retrying on conflict.
func updateJSON[T any](ctx context.Context, e *Engine, b store.Bucket, key string, f func(*T) error) error {
	_, err := updateJSONFrom(ctx, e, b, key, nil, 0, f)
	return err
}

// updateJSONFrom is updateJSON starting from known, the record as this engine wrote it at
// revision rev (nil: read it first): a write in between fails the compare-and-set, and the
// record is then read. It returns the revision it wrote.
func updateJSONFrom[T any](ctx context.Context, e *Engine, b store.Bucket, key string, known *T, rev uint64, f func(*T) error) (uint64, error) {
	for range 50 {
		var v T
		if known != nil {
			v, known = *known, nil
		} else {
			var err error
			if rev, err = e.getJSON(ctx, b, key, &v); err != nil {
				return 0, err
			}
		}
		if err := f(&v); err != nil {
			return 0, err
		}
		written, err := e.st.Update(ctx, b, key, e.sealJSON(b, key, &v), rev)
		if err == nil {
			return written, nil
		} else if !errors.Is(err, store.ErrConflict) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("engine: update %s/%s: %w", b, key, store.ErrContention)
}

func (e *Engine) padRecord(ctx context.Context, id string) (*padRecord, error) {
	return e.padRecordIn(ctx, nil, id)
}

// padRecordIn is padRecord reading from sn if it read the record.
func (e *Engine) padRecordIn(ctx context.Context, sn *store.Snapshot, id string) (*padRecord, error) {
	if !store.ValidKey(id) {
		return nil, errNoPad(id)
	}
	var r padRecord
	if _, err := e.getJSONIn(ctx, sn, store.Pads, id, &r); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNoPad(id)
		}
		return nil, err
	}
	if r.ID != id {
		return nil, fmt.Errorf("%w: record for %s names %s", errTamperedState, id, r.ID)
	}
	return &r, nil
}

// errNoPad is the error for a Pad that does not exist, and for one the caller may not know of.
func errNoPad(id string) error {
	if !store.ValidKey(id) {
		return api.Errorf(api.ErrNotFound, "no Pad %q", id)
	}
	return api.Errorf(api.ErrNotFound, "no Pad %s on this node", id)
}

// rememberParty records the full identity of a party the node has seen sign a request, so that
// a policy's required recipients (named by short id) can be resolved for releases.
// A party's record never changes once stored, so the engine remembers which it has seen stored
// and skips the store read on that party's later requests.
func (e *Engine) rememberParty(ctx context.Context, id *party.Identity) {
	if _, ok := e.parties.Load(id.ID()); ok {
		return
	}
	key := partyKey(id.ID().String())
	if _, _, err := e.st.Get(ctx, store.Meta, key); err == nil {
		e.parties.Store(id.ID(), struct{}{})
		return
	}
	err := e.createJSON(ctx, store.Meta, key, id.String())
	if err != nil && !errors.Is(err, store.ErrExists) {
		e.log.Warn("remember party", "party", id, "err", err)
		return
	}
	e.parties.Store(id.ID(), struct{}{})
}

func (e *Engine) lookupParty(ctx context.Context, id party.ID) (*party.Identity, error) {
	var s string
	if _, err := e.getJSON(ctx, store.Meta, partyKey(id.String()), &s); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("party %s is unknown to this node: it must contact the node once (e.g. styx pad list)", id)
		}
		return nil, err
	}
	ident, err := party.ParseIdentity(s)
	if err != nil {
		return nil, err
	}
	if ident.ID() != id {
		return nil, fmt.Errorf("%w: party record for %s holds another identity", errTamperedState, id)
	}
	return ident, nil
}
