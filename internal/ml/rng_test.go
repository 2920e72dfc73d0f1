package ml

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRNGMatchesMathRand: the kernels' generator draws the orders rand.Perm draws, epoch
// after epoch, so models trained before it came are trained again bit for bit.
func TestRNGMatchesMathRand(t *testing.T) {
	for _, seed := range []uint64{0, 1, 7, 1 << 63} {
		want := rand.New(rand.NewPCG(seed, rngStream))
		got := NewRNG(seed, rngStream)
		for _, n := range []int{0, 1, 2, 3, 16, 713, 1000, 1 << 12} {
			p := make([]uint32, n)
			got.Perm(p)
			w := want.Perm(n)
			for i := range w {
				if int(p[i]) != w[i] {
					t.Fatalf("seed %d, n %d: order %v…, want %v…", seed, n, p[:min(n, 8)], w[:min(n, 8)])
				}
			}
		}
		if got.Uint64() != want.Uint64() {
			t.Fatalf("seed %d: the generators drifted apart", seed)
		}
	}
}

// oldTrain is the training loop before the epoch kernel: rand.Perm in the caller and one
// HingeStep per mini-batch.
func oldTrain(d *Dataset, cfg Config) *Model {
	cfg = cfg.withDefaults()
	m, _ := startModel(Go{}, d, cfg, nil)
	n := len(m.Weights)
	scratch := make([]float64, 2*n+min(cfg.Batch, d.Rows()))
	rng := rand.New(rand.NewPCG(cfg.Seed, rngStream))
	for range cfg.Epochs {
		for _, blk := range rng.Perm((d.Rows() + cfg.Batch - 1) / cfg.Batch) {
			s, e := blk*cfg.Batch, min((blk+1)*cfg.Batch, d.Rows())
			m.Steps++
			eta := cfg.Rate / (1 + cfg.Rate*m.Lambda*float64(m.Steps))
			m.Bias = HingeStep(eta, m.Lambda, m.Bias, d.X[s*n:e*n], d.Labels[s:e], m.Weights, m.Mean, m.Std, scratch[:2*n+e-s])
		}
	}
	return m
}

func TestHingeEpochIsTheStepLoop(t *testing.T) {
	d := loadWDBC(t)
	for _, cfg := range []Config{{Epochs: 3, Seed: 1}, {Epochs: 2, Seed: 9, Batch: 50}, {Epochs: 1, Batch: 1000}} {
		m, err := Train(Go{}, d, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		old := oldTrain(d, cfg)
		if m.Bias != old.Bias || !slices.Equal(m.Weights, old.Weights) || m.Steps != old.Steps {
			t.Fatalf("%+v: epoch kernel model differs from the step loop's", cfg)
		}
	}
}

func TestHingeEpochRejects(t *testing.T) {
	x, labels, w := make([]float64, 6), make([]float64, 3), make([]float64, 2)
	rng := NewRNG(1, 2)
	for name, f := range map[string]func(){
		"zero batch":      func() { HingeEpoch(1, 1, 0, 0, 0, x, labels, w, w, w, &rng, nil, make([]float64, 4)) },
		"short order":     func() { HingeEpoch(1, 1, 0, 0, 2, x, labels, w, w, w, &rng, make([]uint32, 1), make([]float64, 6)) },
		"short x":         func() { HingeEpoch(1, 1, 0, 0, 2, x[:5], labels, w, w, w, &rng, make([]uint32, 2), make([]float64, 6)) },
		"short scratch":   func() { HingeEpoch(1, 1, 0, 0, 2, x, labels, w, w, w, &rng, make([]uint32, 2), make([]float64, 5)) },
		"block past rows": func() { HingeSteps(1, 1, 0, 0, 2, x, labels, w, w, w, []uint32{2}, make([]float64, 6)) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
