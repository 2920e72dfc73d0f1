package ml

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// Config holds the training hyper-parameters. The zero value selects the defaults.
type Config struct {
	Epochs int     `json:"epochs,omitempty"` // passes over the data (default 50)
	Lambda float64 `json:"lambda,omitempty"` // L2 regularisation (default 1e-3)
	Rate   float64 `json:"rate,omitempty"`   // initial step size η₀ (default 0.5)
	Batch  int     `json:"batch,omitempty"`  // rows per mini-batch (default 32)
	Seed   uint64  `json:"seed,omitempty"`   // shuffling seed
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
// step η_t = η₀/(1+η₀λt). The rows are standardised, shuffled once with cfg.Seed, and cut
// into contiguous mini-batches, so each step is two matrix-vector products on k. Given a
// warm model, training continues from it (fine-tuning): its features, standardisation,
// weights and step count are kept and d must have its features.
func Train(k Kernels, d *Dataset, cfg Config, warm *Model) (*Model, error) {
	cfg = cfg.withDefaults()
	m, err := startModel(d, cfg, warm)
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
	x, y := prepare(p, m, cfg.Seed)
	t := newTrainer(k, m, cfg, len(y))
	for range cfg.Epochs {
		t.epoch(x, y)
	}
	m.Epochs += cfg.Epochs
	m.Rows = len(y)
	return m, nil
}

func startModel(d *Dataset, cfg Config, warm *Model) (*Model, error) {
	if warm != nil {
		if err := warm.validate(); err != nil {
			return nil, err
		}
		m := *warm
		m.Weights = slices.Clone(warm.Weights)
		return &m, nil
	}
	mean, std := standardisation(d)
	return &Model{
		Format: ModelFormat, Features: slices.Clone(d.Features), Label: LabelColumn,
		Mean: mean, Std: std, Weights: make([]float64, len(d.Features)), Lambda: cfg.Lambda,
	}, nil
}

func standardisation(d *Dataset) (mean, std []float64) {
	n := len(d.Features)
	mean, std = make([]float64, n), make([]float64, n)
	rows := float64(max(d.Rows(), 1))
	for i := range d.Rows() {
		Axpy(1/rows, d.Row(i), mean)
	}
	for i := range d.Rows() {
		for j, v := range d.Row(i) {
			std[j] += (v - mean[j]) * (v - mean[j]) / rows
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j])
		if !(std[j] > 1e-12) {
			std[j] = 1
		}
	}
	return mean, std
}

// prepare standardises p with m's mean and std, maps labels to ±1 and shuffles the rows.
func prepare(p *Dataset, m *Model, seed uint64) (x, y []float64) {
	perm := rand.New(rand.NewPCG(seed, 0x53564d)).Perm(p.Rows())
	x, y = make([]float64, 0, len(p.X)), make([]float64, 0, p.Rows())
	for _, i := range perm {
		for j, v := range p.Row(i) {
			x = append(x, (v-m.Mean[j])/m.Std[j])
		}
		y = append(y, 2*p.Labels[i]-1)
	}
	return x, y
}

type trainer struct {
	k      Kernels
	m      *Model
	cfg    Config
	margin []float64 // per-row scratch: margins, then hinge coefficients
}

func newTrainer(k Kernels, m *Model, cfg Config, rows int) *trainer {
	return &trainer{k: k, m: m, cfg: cfg, margin: make([]float64, min(cfg.Batch, rows))}
}

func (t *trainer) epoch(x, y []float64) {
	n := len(t.m.Weights)
	for s := 0; s < len(y); s += t.cfg.Batch {
		e := min(s+t.cfg.Batch, len(y))
		t.step(x[s*n:e*n], y[s:e])
	}
}

// step does one subgradient step on the mini-batch (xb, yb).
func (t *trainer) step(xb, yb []float64) {
	m, b := t.m, len(yb)
	n := len(m.Weights)
	t.m.Steps++
	eta := t.cfg.Rate / (1 + t.cfg.Rate*m.Lambda*float64(m.Steps))
	z := t.margin[:b]
	t.k.Gemv(false, b, n, 1, xb, m.Weights, 0, z)
	sum := 0.0
	for i, yi := range yb {
		c := 0.0
		if yi*(z[i]+m.Bias) < 1 {
			c = yi
			sum += yi
		}
		z[i] = c
	}
	t.k.Scal(1-eta*m.Lambda, m.Weights)
	t.k.Gemv(true, b, n, eta/float64(b), xb, z, 1, m.Weights)
	m.Bias += eta * sum / float64(b)
}
