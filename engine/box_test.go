package engine

import (
	"bytes"
	"errors"
	"testing"

	"github.com/styx-tee/styx/store"
)

// The store is outside the trust boundary: a record changed, truncated, or moved to another key
// or bucket must not authenticate.
func TestBoxRefusesTamperedAndSwappedRecords(t *testing.T) {
	b, err := newBox(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed := b.seal(store.Pads, "pad-a", []byte(`{"id":"pad-a"}`))
	pt, err := b.open(store.Pads, "pad-a", sealed)
	if err != nil || string(pt) != `{"id":"pad-a"}` {
		t.Fatalf("round trip: %q %v", pt, err)
	}
	for name, tc := range map[string]struct {
		bucket store.Bucket
		key    string
		data   []byte
	}{
		"other key":     {store.Pads, "pad-b", sealed},
		"other bucket":  {store.JobRecords, "pad-a", sealed},
		"flipped byte":  {store.Pads, "pad-a", flip(sealed, len(sealed)-1)},
		"flipped nonce": {store.Pads, "pad-a", flip(sealed, 0)},
		"truncated":     {store.Pads, "pad-a", sealed[:10]},
		"empty":         {store.Pads, "pad-a", nil},
	} {
		if _, err := b.open(tc.bucket, tc.key, tc.data); !errors.Is(err, errTamperedState) {
			t.Errorf("%s: got %v, want errTamperedState", name, err)
		}
	}
	other, _ := newBox(bytes.Repeat([]byte{8}, 32))
	if _, err := other.open(store.Pads, "pad-a", sealed); !errors.Is(err, errTamperedState) {
		t.Errorf("another state key opened the record: %v", err)
	}
	if _, err := newBox([]byte("short")); err == nil {
		t.Error("a short state key was accepted")
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}
