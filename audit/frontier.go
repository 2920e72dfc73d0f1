package audit

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// A frontier holds, for each level of the tree, the most recently completed node: exactly the
// hashes tlog.StoredHashes reads when it appends the next record. With it, appending never reads
// storage.
type frontier struct {
	idx  []int64 // idx[l]: stored hash index of the latest node at level l, or -1
	hash []tlog.Hash
}

// newFrontier loads the frontier of a tree of n records from r.
func newFrontier(n int64, r tlog.HashReader) (*frontier, error) {
	f := &frontier{}
	var want []int64
	for l := 0; n>>uint(l) > 0; l++ {
		want = append(want, tlog.StoredHashIndex(l, n>>uint(l)-1))
	}
	hs, err := r.ReadHashes(want)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(want) {
		return nil, fmt.Errorf("audit: read %d frontier hashes, want %d", len(hs), len(want))
	}
	f.idx, f.hash = want, hs
	return f, nil
}

// ReadHashes implements tlog.HashReader for the indexes StoredHashes asks for.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, _ := tlog.SplitStoredHashIndex(x)
		if level >= len(f.idx) || f.idx[level] != x {
			return nil, fmt.Errorf("audit: hash %d is not on the frontier", x)
		}
		out[i] = f.hash[level]
	}
	return out, nil
}

// add computes the stored hashes of record n (the next one) and updates the frontier.
func (f *frontier) add(n int64, leaf tlog.Hash) ([]tlog.Hash, error) {
	hs, err := tlog.StoredHashesForRecordHash(n, leaf, f)
	if err != nil {
		return nil, err
	}
	base := tlog.StoredHashIndex(0, n)
	for l, h := range hs {
		if l == len(f.idx) {
			f.idx = append(f.idx, -1)
			f.hash = append(f.hash, tlog.Hash{})
		}
		f.idx[l], f.hash[l] = base+int64(l), h
	}
	return hs, nil
}

// clone returns an independent copy, so a failed append leaves the original untouched.
func (f *frontier) clone() *frontier {
	return &frontier{idx: append([]int64(nil), f.idx...), hash: append([]tlog.Hash(nil), f.hash...)}
}
