package ml

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// CommonFeatures returns the features present in every dataset, in the order of the
// first. One owner's input rule may have dropped columns from its share; the trainer
// uses what all inputs have.
func CommonFeatures(ds ...*Dataset) []string {
	if len(ds) == 0 {
		return nil
	}
	var out []string
	for _, f := range ds[0].Features {
		if all(ds[1:], func(d *Dataset) bool { return slices.Contains(d.Features, f) }) {
			out = append(out, f)
		}
	}
	return out
}

func all(ds []*Dataset, ok func(*Dataset) bool) bool {
	for _, d := range ds {
		if !ok(d) {
			return false
		}
	}
	return true
}

// Merge concatenates the rows of ds projected onto features. Every dataset must have
// every feature. A single dataset that already has exactly these features is returned as
// is (sharing its storage) rather than copied.
func Merge(features []string, ds ...*Dataset) (*Dataset, error) {
	if len(ds) == 1 && slices.Equal(ds[0].Features, features) {
		return ds[0], nil
	}
	rows := 0
	for _, d := range ds {
		rows += d.Rows()
	}
	// Sized once: in a sandboxed program every reallocation of these big slices grows and
	// copies guest memory.
	out := &Dataset{Features: slices.Clone(features),
		X: make([]float64, 0, rows*len(features)), Labels: make([]float64, 0, rows)}
	for k, d := range ds {
		idx := make([]int, len(features))
		for j, f := range features {
			idx[j] = slices.Index(d.Features, f)
			if idx[j] < 0 {
				return nil, fmt.Errorf("%w: input %d lacks feature %q", ErrFormat, k, f)
			}
		}
		if slices.Equal(d.Features, features) {
			out.X = append(out.X, d.X...) // the same columns in the same order: one copy
		} else {
			for i := range d.Rows() {
				row := d.Row(i)
				for _, c := range idx {
					out.X = append(out.X, row[c])
				}
			}
		}
		out.Labels = append(out.Labels, d.Labels...)
	}
	return out, nil
}

// Split divides d into a training and a test set, stratified by label: in each class a
// fraction testFrac of the rows (rounded) goes to the test set, chosen by a permutation
// seeded with seed.
func Split(d *Dataset, testFrac float64, seed uint64) (train, test *Dataset) {
	rng := rand.New(rand.NewPCG(seed, 0x5157))
	var trainIdx, testIdx []int
	for _, class := range []float64{0, 1} {
		var idx []int
		for i, l := range d.Labels {
			if l == class {
				idx = append(idx, i)
			}
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		k := int(float64(len(idx))*testFrac + 0.5)
		testIdx = append(testIdx, idx[:k]...)
		trainIdx = append(trainIdx, idx[k:]...)
	}
	slices.Sort(trainIdx)
	slices.Sort(testIdx)
	return d.subset(trainIdx), d.subset(testIdx)
}

// Shares divides d into k stratified shares of nearly equal size (round-robin within each
// class after a seeded shuffle).
func Shares(d *Dataset, k int, seed uint64) []*Dataset {
	rng := rand.New(rand.NewPCG(seed, 0x5348))
	idx := make([][]int, k)
	for _, class := range []float64{0, 1} {
		var c []int
		for i, l := range d.Labels {
			if l == class {
				c = append(c, i)
			}
		}
		rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		for n, i := range c {
			idx[n%k] = append(idx[n%k], i)
		}
	}
	out := make([]*Dataset, k)
	for s := range idx {
		slices.Sort(idx[s])
		out[s] = d.subset(idx[s])
	}
	return out
}

func (d *Dataset) subset(rows []int) *Dataset {
	out := &Dataset{Features: slices.Clone(d.Features)}
	for _, i := range rows {
		out.X = append(out.X, d.Row(i)...)
		out.Labels = append(out.Labels, d.Labels[i])
	}
	return out
}

// Project returns d restricted to the named features (for example a share whose owner
// drops some columns).
func (d *Dataset) Project(features []string) (*Dataset, error) { return Merge(features, d) }

// Repeat returns d's rows repeated n times (benchmarks of growing data).
func (d *Dataset) Repeat(n int) *Dataset {
	out := &Dataset{Features: slices.Clone(d.Features)}
	for range n {
		out.X = append(out.X, d.X...)
		out.Labels = append(out.Labels, d.Labels...)
	}
	return out
}
