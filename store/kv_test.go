package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCreateGetUpdate(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)

	rev, err := s.Create(ctx, Pads, "pad.a", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Pads, "pad.a", []byte("again")); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	got, gotRev, err := s.Get(ctx, Pads, "pad.a")
	if err != nil || string(got) != "v1" || gotRev != rev {
		t.Fatalf("Get = %q, %d, %v; want v1, %d", got, gotRev, err, rev)
	}
	rev2, err := s.Update(ctx, Pads, "pad.a", []byte("v2"), rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, Pads, "pad.a", []byte("stale"), rev); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update with old revision: got %v, want ErrConflict", err)
	}
	if _, err := s.Update(ctx, Pads, "pad.missing", []byte("x"), rev2); !errors.Is(err, ErrConflict) {
		t.Fatalf("Update of missing key: got %v, want ErrConflict", err)
	}
	got, _, _ = s.Get(ctx, Pads, "pad.a")
	if string(got) != "v2" {
		t.Fatalf("after conflict value = %q, want v2", got)
	}
}

func TestDeleteThenCreate(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if _, err := s.Create(ctx, Revocations, "pad.x", []byte("r")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, Revocations, "pad.x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, Revocations, "pad.x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Create(ctx, Revocations, "pad.x", []byte("r2")); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	for _, key := range []string{"", ".a", "a.", "a..b", "a b", "a*", "a>", "../x", string(make([]byte, 513))} {
		if _, err := s.Create(ctx, Pads, key, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%q): %v, want ErrInvalid", key, err)
		}
	}
	if _, _, err := s.Get(ctx, Bucket("nope"), "a"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown bucket: %v", err)
	}
	if _, err := s.Put(ctx, Pads, "big", make([]byte, MaxValueSize+1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("oversized value: %v", err)
	}
	if _, err := s.Update(ctx, Pads, "a", nil, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("Update rev 0: %v", err)
	}
}

func TestMonotonicBucketsRefuseGenericWrites(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	if _, err := s.Reserve(ctx, "c", 1, 10); err != nil {
		t.Fatal(err)
	}
	for _, b := range []Bucket{Counters, Versions} {
		if _, err := s.Put(ctx, b, "c", []byte{0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrMonotonic) {
			t.Errorf("Put %s: %v", b, err)
		}
		if _, err := s.Create(ctx, b, "z", nil); !errors.Is(err, ErrMonotonic) {
			t.Errorf("Create %s: %v", b, err)
		}
		if _, err := s.Update(ctx, b, "c", nil, 1); !errors.Is(err, ErrMonotonic) {
			t.Errorf("Update %s: %v", b, err)
		}
		if err := s.Delete(ctx, b, "c"); !errors.Is(err, ErrMonotonic) {
			t.Errorf("Delete %s: %v", b, err)
		}
		if err := s.Purge(ctx, b, "c"); !errors.Is(err, ErrMonotonic) {
			t.Errorf("Purge %s: %v", b, err)
		}
	}
	if n, _ := s.Counter(ctx, "c"); n != 1 {
		t.Fatalf("counter = %d after refused writes, want 1", n)
	}
}

func TestKeysPrefix(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	for _, k := range []string{"pad.a.meta", "pad.b.meta", "padding", "prog.x"} {
		if _, err := s.Put(ctx, Pads, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, Pads, "pad.b.meta"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", []string{"pad.a.meta", "padding", "prog.x"}},
		{"pad.", []string{"pad.a.meta"}},
		{"pad", []string{"pad.a.meta", "padding"}},
		{"zzz", nil},
	} {
		got, err := s.Keys(ctx, Pads, tc.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Keys(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	if got, err := s.Keys(ctx, Programs, ""); err != nil || len(got) != 0 {
		t.Errorf("Keys of empty bucket = %q, %v", got, err)
	}
}

func TestPurgeRemovesEveryRevision(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	secret := []byte("wrapped-data-key-material")
	rev1, err := s.Create(ctx, DataKeys, "pad.derived", secret)
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := s.Update(ctx, DataKeys, "pad.derived", append(secret, '2'), rev1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, DataKeys, "pad.derived"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, DataKeys, "pad.derived"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Purge: %v", err)
	}
	if revs, err := s.History(ctx, DataKeys, "pad.derived"); err != nil || len(revs) != 0 {
		t.Fatalf("History after Purge = %v, %v; want none", revs, err)
	}
	stream, err := s.js.Stream(ctx, "KV_"+string(DataKeys))
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range []uint64{rev1, rev2} {
		if m, err := stream.GetMsg(ctx, rev); err == nil {
			t.Errorf("revision %d still readable after Purge: %q", rev, m.Data)
		}
	}
	if err := s.Purge(ctx, DataKeys, "pad.never"); err != nil {
		t.Fatalf("Purge of missing key: %v", err)
	}
	// A shredded key can be recreated (a fresh key for a new Pad id).
	if _, err := s.Create(ctx, DataKeys, "pad.derived", []byte("new")); err != nil {
		t.Fatalf("Create after Purge: %v", err)
	}
	if got, _, _ := s.Get(ctx, DataKeys, "pad.derived"); !bytes.Equal(got, []byte("new")) {
		t.Fatalf("value after recreate = %q", got)
	}
}

// TestPurgeErasesBytesOnDisk runs a store without encryption at rest so the
// raw files can be searched: after Purge, the value's bytes must be gone
// from the disk, not merely unreachable.
func TestPurgeErasesBytesOnDisk(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	ctx := testCtx(t)
	secret := []byte("WRAPPED-DATA-KEY-3f9a1c")
	key := GenerateKey()
	open := func() *Store {
		s, err := Open(ctx, Config{Dir: dir, Key: key, noEncrypt: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	onDisk := func() bool {
		found := false
		walkFiles(t, dir, func(_ string, data []byte) { found = found || bytes.Contains(data, secret) })
		return found
	}
	s := open()
	if _, err := s.Create(ctx, DataKeys, "pad.d", secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, DataKeys, "pad.other", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !onDisk() {
		t.Fatal("control: the unencrypted value is not on disk, so this test proves nothing")
	}
	s = open()
	if err := s.Purge(ctx, DataKeys, "pad.d"); err != nil {
		t.Fatal(err)
	}
	if v, _, err := s.Get(ctx, DataKeys, "pad.other"); err != nil || string(v) != "keep" {
		t.Fatalf("neighbouring key damaged: %q, %v", v, err)
	}
	s.Close()
	if onDisk() {
		t.Fatal("purged value still readable in the store's files")
	}
}

func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"pad.a", "a..b", ".", "a/b=c", "../x", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if !ValidKey(key) {
			return
		}
		for _, c := range []byte(key) {
			if c == ' ' || c == '*' || c == '>' || c < 0x21 || c > 0x7e {
				t.Fatalf("ValidKey accepted %q", key)
			}
		}
	})
}

func TestKeyPartDistinct(t *testing.T) {
	long := strings.Repeat("x", 121)
	seen := map[string]string{}
	for _, s := range []string{"", "a", "b", "ab", long, long + "y", strings.Repeat("x", 120)} {
		p := KeyPart(s)
		if prev, ok := seen[p]; ok {
			t.Fatalf("KeyPart(%q) == KeyPart(%q) == %q", s, prev, p)
		}
		seen[p] = s
	}
}

func FuzzKeyPart(f *testing.F) {
	f.Add("styx1qqq…:+/ \x00.")
	f.Fuzz(func(t *testing.T, s string) {
		p := KeyPart(s)
		if !ValidKey(p) || strings.Contains(p, ".") || len(p) > 161 {
			t.Fatalf("KeyPart(%q) = %q is not a single valid token", s, p)
		}
	})
}
