package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestReadManyMatchesSingleReads checks that a snapshot answers every key as the single reads
// do: values and revisions, missing, deleted and purged keys, counters and versions.
func TestReadManyMatchesSingleReads(t *testing.T) {
	s := openTemp(t)
	ctx := testCtx(t)
	for _, k := range []string{"a", "b.c", "gone", "shredded"} {
		if _, err := s.Put(ctx, Pads, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, Pads, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, Pads, "shredded"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "use.p", 3, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceVersion(ctx, "policy.p", 2, []byte("doc")); err != nil {
		t.Fatal(err)
	}
	refs := []Ref{
		{Pads, "a"}, {Pads, "b.c"}, {Pads, "gone"}, {Pads, "shredded"}, {Pads, "never"}, {Pads, "a"},
		{Revocations, "a"}, // a bucket with no key asked for present
		{Counters, "use.p"}, {Counters, "use.never"},
		{Versions, "policy.p"}, {Versions, "policy.never"},
	}
	sn, err := s.ReadMany(ctx, refs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		switch r.Bucket {
		case Counters:
			want, werr := s.Counter(ctx, r.Key)
			got, in, err := sn.Counter(r.Key)
			if !in || got != want || !sameErr(err, werr) {
				t.Errorf("%s/%s: snapshot %d, %v (in %v); store %d, %v", r.Bucket, r.Key, got, err, in, want, werr)
			}
		case Versions:
			wv, wp, werr := s.Version(ctx, r.Key)
			gv, gp, in, err := sn.Version(r.Key)
			if !in || gv != wv || !bytes.Equal(gp, wp) || !sameErr(err, werr) {
				t.Errorf("%s/%s: snapshot %d %q, %v (in %v); store %d %q, %v", r.Bucket, r.Key, gv, gp, err, in, wv, wp, werr)
			}
		default:
			wv, wrev, werr := s.Get(ctx, r.Bucket, r.Key)
			gv, grev, in, err := sn.Get(r.Bucket, r.Key)
			if !in || !bytes.Equal(gv, wv) || grev != wrev || !sameErr(err, werr) {
				t.Errorf("%s/%s: snapshot %q rev %d, %v (in %v); store %q rev %d, %v", r.Bucket, r.Key, gv, grev, err, in, wv, wrev, werr)
			}
		}
	}
	if _, _, in, _ := sn.Get(Pads, "not-asked"); in {
		t.Error("a key the snapshot did not read is in it")
	}
	if _, in, _ := sn.Counter("use.other"); in {
		t.Error("a counter the snapshot did not read is in it")
	}
	var nilSnap *Snapshot
	if _, _, in, _ := nilSnap.Get(Pads, "a"); in {
		t.Error("a nil snapshot holds a key")
	}
}

// sameErr reports whether two errors are both nil or both ErrNotFound.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return errors.Is(a, ErrNotFound) && errors.Is(b, ErrNotFound)
}

// TestReadManyIsASnapshot checks that what was read does not change with later writes.
func TestReadManyIsASnapshot(t *testing.T) {
	s := openTemp(t)
	ctx := testCtx(t)
	if _, err := s.Put(ctx, Pads, "k", []byte("old")); err != nil {
		t.Fatal(err)
	}
	sn, err := s.ReadMany(ctx, []Ref{{Pads, "k"}, {Revocations, "k"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, Pads, "k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, Revocations, "k", []byte("revoked")); err != nil {
		t.Fatal(err)
	}
	if v, _, _, err := sn.Get(Pads, "k"); err != nil || string(v) != "old" {
		t.Errorf("snapshot reads %q, %v; want the value as read", v, err)
	}
	if _, _, _, err := sn.Get(Revocations, "k"); !errors.Is(err, ErrNotFound) {
		t.Errorf("snapshot reads a revocation written after it: %v", err)
	}
	sn, err = s.ReadMany(ctx, []Ref{{Pads, "k"}, {Revocations, "k"}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _, err := sn.Get(Revocations, "k"); err != nil || string(v) != "revoked" {
		t.Errorf("a new snapshot reads %q, %v; want the revocation", v, err)
	}
}

// TestReadManyRefuses checks the arguments ReadMany refuses, and a register carrying a delete
// marker (never written by this package: tampering).
func TestReadManyRefuses(t *testing.T) {
	s := openTemp(t)
	ctx := testCtx(t)
	many := make([]Ref, MaxReadMany+1)
	for i := range many {
		many[i] = Ref{Pads, fmt.Sprintf("k%d", i)}
	}
	for name, refs := range map[string][]Ref{
		"wildcard key":   {{Pads, "a.*"}},
		"full wildcard":  {{Pads, ">"}},
		"unknown bucket": {{Bucket("nope"), "a"}},
		"too many keys":  many,
	} {
		if _, err := s.ReadMany(ctx, refs); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.ReadMany(ctx, many[:MaxReadMany]); err != nil {
		t.Errorf("%d keys: %v", MaxReadMany, err)
	}

	if _, err := s.Reserve(ctx, "use.t", 1, 5); err != nil {
		t.Fatal(err)
	}
	marker := &nats.Msg{Subject: "$KV." + string(Counters) + ".use.t", Header: nats.Header{"KV-Operation": []string{"DEL"}}}
	if _, err := s.js.PublishMsg(ctx, marker); err != nil {
		t.Fatal(err)
	}
	sn, err := s.ReadMany(ctx, []Ref{{Counters, "use.t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.readRegister(ctx, Counters, "use.t"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("single read of a marked counter: %v", err)
	}
	if _, in, err := sn.Counter("use.t"); !in || !errors.Is(err, ErrCorrupt) {
		t.Errorf("snapshot read of a marked counter: %v (in %v), want ErrCorrupt", err, in)
	}

	s.Close()
	if _, err := s.ReadMany(ctx, []Ref{{Pads, "a"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("closed store: %v, want ErrClosed", err)
	}
}

// BenchmarkReadMany compares a decision's fifteen reads made one request each (at once) with
// the same reads in one ReadMany.
func BenchmarkReadMany(b *testing.B) {
	s, err := Open(b.Context(), Config{Dir: b.TempDir(), Key: GenerateKey()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	var refs []Ref
	for i := range 3 {
		id := fmt.Sprintf("pad%d", i)
		if _, err := s.Put(ctx, Pads, id, make([]byte, 600)); err != nil {
			b.Fatal(err)
		}
		if err := s.AdvanceVersion(ctx, "policy."+id, 1, make([]byte, 900)); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Reserve(ctx, "use."+id, 1, 100); err != nil {
			b.Fatal(err)
		}
		refs = append(refs, Ref{Pads, id}, Ref{Revocations, id}, Ref{Versions, "policy." + id},
			Ref{Counters, "use." + id}, Ref{Counters, "use." + id + ".caller"})
	}
	b.Run("single", func(b *testing.B) {
		for b.Loop() {
			errs := make(chan error, len(refs))
			for _, r := range refs {
				go func() {
					var err error
					switch r.Bucket {
					case Counters:
						_, err = s.Counter(ctx, r.Key)
					case Versions:
						_, _, err = s.Version(ctx, r.Key)
					default:
						_, _, err = s.Get(ctx, r.Bucket, r.Key)
					}
					if errors.Is(err, ErrNotFound) {
						err = nil
					}
					errs <- err
				}()
			}
			for range refs {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("many", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.ReadMany(ctx, refs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestReadManyRepliesChecked feeds collect replies a faulty or hostile server could send: each
// fails the read (none leaves a key to read as missing), and the well-formed ends pass.
func TestReadManyRepliesChecked(t *testing.T) {
	msg := func(h ...string) *nats.Msg {
		m := &nats.Msg{Header: nats.Header{}, Data: []byte("v")}
		for i := 0; i < len(h); i += 2 {
			m.Header.Set(h[i], h[i+1])
		}
		return m
	}
	rec := func(key, seq string) *nats.Msg {
		return msg("Nats-Subject", "$KV."+string(Revocations)+"."+key, "Nats-Sequence", seq)
	}
	eob := func(pending string) *nats.Msg {
		return msg("Status", "204", "Description", "EOB", "Nats-Num-Pending", pending)
	}
	none := msg("Status", "404", "Description", "No Results")
	for _, c := range []struct {
		name    string
		replies []*nats.Msg
		ok      bool
	}{
		{"all found", []*nats.Msg{rec("a", "7"), rec("b", "9"), eob("0")}, true},
		{"one found", []*nats.Msg{rec("b", "9"), eob("0")}, true},
		{"none found", []*nats.Msg{none}, true},
		{"cut short", []*nats.Msg{rec("a", "7"), eob("1")}, false},
		{"end without a count", []*nats.Msg{rec("a", "7"), msg("Status", "204", "Description", "EOB")}, false},
		{"no results after a record", []*nats.Msg{rec("a", "7"), none}, false},
		{"load failure", []*nats.Msg{msg("Status", "404", "Description", "Message Not Found")}, false},
		{"too many", []*nats.Msg{msg("Status", "413", "Description", "Too Many Results")}, false},
		{"key not asked for", []*nats.Msg{rec("c", "3"), eob("0")}, false},
		{"other bucket", []*nats.Msg{msg("Nats-Subject", "$KV."+string(Pads)+".a", "Nats-Sequence", "3"), eob("0")}, false},
		{"two replies for a key", []*nats.Msg{rec("a", "7"), rec("a", "8"), eob("0")}, false},
		{"no sequence", []*nats.Msg{rec("a", ""), eob("0")}, false},
		{"sequence zero", []*nats.Msg{rec("a", "0"), eob("0")}, false},
	} {
		r := &bucketRead{b: Revocations, keys: []string{"a", "b"}, replies: make(chan *nats.Msg, len(c.replies))}
		for _, m := range c.replies {
			r.replies <- m
		}
		sn := &Snapshot{recs: map[Ref]snapRecord{}}
		err := r.collect(testCtx(t), sn)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	// Nothing comes: the read ends with its context.
	r := &bucketRead{b: Revocations, keys: []string{"a"}, replies: make(chan *nats.Msg)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := r.collect(ctx, &Snapshot{recs: map[Ref]snapRecord{}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("silent server: %v", err)
	}
}

// FuzzReadManyReplies feeds the reply reader arbitrary replies (subjects, sequences, statuses,
// counts), three fields per reply, separated by newlines. It must not panic, and a read it
// accepts must hold every key asked for, each found one with a sequence, as the server sent it.
func FuzzReadManyReplies(f *testing.F) {
	f.Add("a|7|\nb|9|\n|0|204")
	f.Add("|0|404")
	f.Add("a|7|\n|1|204")
	f.Add("c|3|\na|x|\n|0|500")
	f.Fuzz(func(t *testing.T, script string) {
		keys := []string{"a", "b"}
		lines := strings.Split(script, "\n")
		if len(lines) > 16 {
			lines = lines[:16]
		}
		r := &bucketRead{b: Revocations, keys: keys, replies: make(chan *nats.Msg, len(lines))}
		sent := map[string]string{}
		for _, line := range lines {
			field := strings.SplitN(line, "|", 3)
			for len(field) < 3 {
				field = append(field, "")
			}
			m := &nats.Msg{Header: nats.Header{}}
			if field[2] != "" {
				m.Header.Set("Status", field[2])
				m.Header.Set("Nats-Num-Pending", field[1])
				m.Header.Set("Description", "No Results")
			} else {
				m.Header.Set("Nats-Subject", "$KV."+string(Revocations)+"."+field[0])
				m.Header.Set("Nats-Sequence", field[1])
				if _, dup := sent[field[0]]; !dup {
					sent[field[0]] = field[1]
				}
			}
			r.replies <- m
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		sn := &Snapshot{recs: map[Ref]snapRecord{}}
		if err := r.collect(ctx, sn); err != nil {
			return
		}
		if len(sn.recs) != len(keys) {
			t.Fatalf("accepted a read holding %d records for %d keys", len(sn.recs), len(keys))
		}
		for _, k := range keys {
			rec, ok := sn.recs[Ref{Revocations, k}]
			if !ok {
				t.Fatalf("accepted a read without key %s", k)
			}
			if rec.found && (rec.rev == 0 || strconv.FormatUint(rec.rev, 10) != sent[k]) {
				t.Fatalf("key %s read at sequence %d; the server sent %q", k, rec.rev, sent[k])
			}
		}
	})
}
