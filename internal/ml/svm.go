package ml

import (
	"fmt"
	"math"
	"slices"
)

// Config holds the training hyper-parameters. The zero value selects the defaults.
type Config struct {
	Epochs int     `json:"epochs,omitempty"` // passes over the data (default 50)
	Lambda float64 `json:"lambda,omitempty"` // L2 regularisation (default 1e-3)
	Rate   float64 `json:"rate,omitempty"`   // initial step size η₀ (default 0.5)
	Batch  int     `json:"batch,omitempty"`  // rows per mini-batch (default 32)
	Seed   uint64  `json:"seed,omitempty"`   // shuffling seed

	// AfterEpoch, if set, is called after each epoch of this session (1, 2, …) with the model
	// so far and the training rows in its feature order, e.g. to report a training curve with
	// [Model.Fit]. It must not modify either.
	AfterEpoch func(epoch int, m *Model, d *Dataset) `json:"-"`
}

func (c Config) withDefaults() Config {
	if c.Epochs <= 0 {
		c.Epochs = 50
	}
	if !(c.Lambda > 0) {
		c.Lambda = 1e-3
	}
	if !(c.Rate > 0) {
		c.Rate = 0.5
	}
	if c.Batch <= 0 {
		c.Batch = 32
	}
	return c
}

// Train fits a linear SVM (hinge loss + L2) to d by mini-batch subgradient descent with
// step η_t = η₀/(1+η₀λt), on standardised features. The rows are cut into contiguous
// mini-batches visited in a seeded random order each epoch; standardisation is folded
// into each step (w/σ against the raw rows), so the data is never copied and each step
// is two matrix-vector products on k plus O(features) work. Given a warm model, training
// continues from it (fine-tuning): its features, standardisation, weights and step count
// are kept and d must have its features.
func Train(k Kernels, d *Dataset, cfg Config, warm *Model) (*Model, error) {
	cfg = cfg.withDefaults()
	m, err := startModel(k, d, cfg, warm)
	if err != nil {
		return nil, err
	}
	p, err := d.Project(m.Features)
	if err != nil {
		return nil, err
	}
	if p.Rows() == 0 {
		return nil, fmt.Errorf("%w: no training rows", ErrFormat)
	}
	t := newTrainer(k, m, cfg, p)
	for e := range cfg.Epochs {
		t.epoch()
		if cfg.AfterEpoch != nil {
			cfg.AfterEpoch(e+1, m, p)
		}
	}
	m.Epochs += cfg.Epochs
	m.Rows = p.Rows()
	return m, nil
}

func startModel(k Kernels, d *Dataset, cfg Config, warm *Model) (*Model, error) {
	if warm != nil {
		if err := warm.validate(); err != nil {
			return nil, err
		}
		m := *warm
		m.Weights = slices.Clone(warm.Weights)
		return &m, nil
	}
	mean, std := standardisation(k, d)
	return &Model{
		Format: ModelFormat, Features: slices.Clone(d.Features), Label: LabelColumn,
		Mean: mean, Std: std, Weights: make([]float64, len(d.Features)), Lambda: cfg.Lambda,
	}, nil
}

func standardisation(k Kernels, d *Dataset) (mean, std []float64) {
	n := len(d.Features)
	mean, std = make([]float64, n), make([]float64, n)
	rows := float64(max(d.Rows(), 1))
	ones := make([]float64, d.Rows())
	for i := range ones {
		ones[i] = 1
	}
	k.Gemv(true, d.Rows(), n, 1/rows, d.X, ones, 0, mean) // mean = Xᵀ·1/rows
	k.ColVar(d.Rows(), n, d.X, mean, std)
	for j := range std {
		std[j] = math.Sqrt(std[j] / rows)
		if !(std[j] > 1e-12) {
			std[j] = 1
		}
	}
	return mean, std
}

type trainer struct {
	k       Kernels
	m       *Model
	cfg     Config
	d       *Dataset
	rng     RNG
	order   []uint32  // one epoch's order of the mini-batches
	scratch []float64 // 2*features + batch values for HingeStep
}

func newTrainer(k Kernels, m *Model, cfg Config, d *Dataset) *trainer {
	n := len(m.Weights)
	return &trainer{k: k, m: m, cfg: cfg, d: d, rng: NewRNG(cfg.Seed, rngStream),
		order: make([]uint32, (d.Rows()+cfg.Batch-1)/cfg.Batch), scratch: make([]float64, 2*n+min(cfg.Batch, d.Rows()))}
}

// epoch shuffles the mini-batches and does one subgradient step on each, in one kernel call:
// inside a sandbox, a host call per step, or drawing the order in wasm, cost more than the
// steps themselves.
func (t *trainer) epoch() {
	m := t.m
	m.Bias = t.k.HingeEpoch(t.cfg.Rate, m.Lambda, m.Bias, m.Steps, t.cfg.Batch,
		t.d.X, t.d.Labels, m.Weights, m.Mean, m.Std, &t.rng, t.order, t.scratch)
	m.Steps += len(t.order)
}

// HingeEpoch is the reference implementation of [Kernels.HingeEpoch]: one training epoch on
// the rows x (rows×n, row-major, rows = len(labels), n = len(w)) cut into blocks of batch rows
// (the last may be shorter). It fills order (one entry per block) with a random permutation
// drawn from rng ([RNG.Perm]), then does [HingeSteps]. It updates w and rng in place and
// returns the new bias; scratch holds 2n+min(batch, rows) values. It panics if a dimension
// does not match.
func HingeEpoch(rate, lambda, bias float64, steps, batch int, x, labels, w, mean, std []float64, rng *RNG, order []uint32, scratch []float64) float64 {
	if batch <= 0 || len(order) != (len(labels)+batch-1)/batch {
		panic(fmt.Sprintf("ml: hinge epoch with %d rows in batches of %d and an order of %d", len(labels), batch, len(order)))
	}
	rng.Perm(order)
	return HingeSteps(rate, lambda, bias, steps, batch, x, labels, w, mean, std, order, scratch)
}

// HingeSteps does one [HingeStep] per entry of order, on block order[i] of the rows x
// (see [HingeEpoch]), with the step size η = rate/(1+rate·λ·(steps+i+1)). It panics if a
// dimension does not match or a block is out of range.
func HingeSteps(rate, lambda, bias float64, steps, batch int, x, labels, w, mean, std []float64, order []uint32, scratch []float64) float64 {
	rows, n := len(labels), len(w)
	if batch <= 0 || len(x) != rows*n || len(scratch) != 2*n+min(batch, rows) {
		panic(fmt.Sprintf("ml: hinge steps with %d rows, %d features, batch %d, x %d, scratch %d", rows, n, batch, len(x), len(scratch)))
	}
	blocks := (rows + batch - 1) / batch
	for i, blk := range order {
		if int(blk) >= blocks {
			panic(fmt.Sprintf("ml: hinge steps visit block %d of %d", blk, blocks))
		}
		s := int(blk) * batch
		e := min(s+batch, rows)
		eta := rate / (1 + rate*lambda*float64(steps+i+1))
		bias = HingeStep(eta, lambda, bias, x[s*n:e*n], labels[s:e], w, mean, std, scratch[:2*n+e-s])
	}
	return bias
}

// HingeStep is the reference implementation of [Kernels.HingeStep]: one subgradient step
// of the L2-regularised hinge loss on the mini-batch of raw rows xb (b×n, row-major) with
// 0/1 labels lb, as if the rows were standardised with mean and std:
// w·x̃ = (w/σ)·x − (w/σ)·μ and Σcᵢx̃ᵢ = (Σcᵢxᵢ − μΣcᵢ)/σ. It updates w in place and
// returns the new bias; scratch holds 2n+b values.
func HingeStep(eta, lambda, bias float64, xb, lb, w, mean, std, scratch []float64) float64 {
	b, n := len(lb), len(w)
	if len(xb) != b*n || len(mean) != n || len(std) != n || len(scratch) != 2*n+b {
		panic(fmt.Sprintf("ml: hinge step with %d rows, %d features, x %d, scratch %d", b, n, len(xb), len(scratch)))
	}
	v, g, z := scratch[:n:n], scratch[n:2*n:2*n], scratch[2*n:]
	off := bias
	for j := range n {
		v[j] = w[j] / std[j]
		off -= v[j] * mean[j]
	}
	Gemv(false, b, n, 1, xb, v, 0, z)
	sum := 0.0
	for i, l := range lb {
		y, c := 2*l-1, 0.0
		if y*(z[i]+off) < 1 {
			c = y
			sum += y
		}
		z[i] = c
	}
	Gemv(true, b, n, 1, xb, z, 0, g)
	decay, rate := 1-eta*lambda, eta/float64(b)
	for j := range n {
		w[j] = decay*w[j] + rate*(g[j]-mean[j]*sum)/std[j]
	}
	return bias + eta*sum/float64(b)
}
