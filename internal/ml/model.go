package ml

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
)

// ModelFormat identifies the JSON encoding of a [Model].
const ModelFormat = "styx-linear-svm/v1"

// MaxModelSize caps the encoded size of a model that [ReadModel] accepts.
const MaxModelSize = 1 << 20

// Model is a linear SVM over standardised features: score(x) = w·((x-mean)/std) + bias;
// the predicted label is 1 when the score is at least 0.
type Model struct {
	Format   string    `json:"format"`
	Features []string  `json:"features"`
	Label    string    `json:"label"`
	Mean     []float64 `json:"mean"`
	Std      []float64 `json:"std"`
	Weights  []float64 `json:"weights"`
	Bias     float64   `json:"bias"`
	Lambda   float64   `json:"lambda"`
	Epochs   int       `json:"epochs"` // epochs done, over every training session
	Steps    int       `json:"steps"`  // mini-batch steps done, over every session
	Rows     int       `json:"rows"`   // rows seen in the last session
}

// Score returns the decision value for x, given in the model's feature order.
func (m *Model) Score(x []float64) float64 {
	s := m.Bias
	for j, v := range x {
		s += m.Weights[j] * (v - m.Mean[j]) / m.Std[j]
	}
	return s
}

// Predict returns 1 or 0 for x, given in the model's feature order.
func (m *Model) Predict(x []float64) float64 {
	if m.Score(x) >= 0 {
		return 1
	}
	return 0
}

// Accuracy returns the fraction of d's rows the model labels correctly. d must have the
// model's features (use [Dataset.Project] first).
func (m *Model) Accuracy(d *Dataset) (float64, error) {
	p, err := d.Project(m.Features)
	if err != nil {
		return 0, err
	}
	ok := 0
	for i := range p.Rows() {
		if m.Predict(p.Row(i)) == p.Labels[i] {
			ok++
		}
	}
	return float64(ok) / float64(max(p.Rows(), 1)), nil
}

// Fit returns the training objective of the model on d, the L2-regularised mean hinge loss
// λ/2·‖w‖² + mean(max(0, 1 − y·score)) with y = ±1, and the fraction of d's rows it labels
// correctly. d must have the model's features in the model's order (as [Config.AfterEpoch]
// receives it). Both are aggregates over all rows: one pass, one matrix-vector product on k.
func (m *Model) Fit(k Kernels, d *Dataset) (objective, accuracy float64) {
	n, rows := len(m.Weights), d.Rows()
	v, off := make([]float64, n), m.Bias
	for j := range n {
		v[j] = m.Weights[j] / m.Std[j]
		off -= v[j] * m.Mean[j]
	}
	z := make([]float64, rows)
	if rows > 0 {
		k.Gemv(false, rows, n, 1, d.X, v, 0, z)
	}
	hinge, right := 0.0, 0
	for i, l := range d.Labels {
		s := z[i] + off
		hinge += max(0, 1-(2*l-1)*s)
		if (s >= 0) == (l == 1) {
			right++
		}
	}
	rows = max(rows, 1)
	return m.Lambda/2*Dot(m.Weights, m.Weights) + hinge/float64(rows), float64(right) / float64(rows)
}

// Marshal encodes the model as JSON.
func (m *Model) Marshal() ([]byte, error) { return json.Marshal(m) }

// ReadModel decodes and validates a model of at most [MaxModelSize] bytes.
func ReadModel(r io.Reader) (*Model, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxModelSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxModelSize {
		return nil, fmt.Errorf("%w: model larger than %d bytes", ErrFormat, MaxModelSize)
	}
	return ParseModel(b)
}

// ParseModel decodes and validates a JSON model; unknown fields are refused.
func ParseModel(b []byte) (*Model, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Model
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: model: %v", ErrFormat, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after model", ErrFormat)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Model) validate() error {
	n := len(m.Features)
	switch {
	case m.Format != ModelFormat:
		return fmt.Errorf("%w: model format %.40q, want %q", ErrFormat, m.Format, ModelFormat)
	case n == 0 || n > MaxColumns:
		return fmt.Errorf("%w: model with %d features", ErrFormat, n)
	case len(m.Mean) != n || len(m.Std) != n || len(m.Weights) != n:
		return fmt.Errorf("%w: model vectors do not match its %d features", ErrFormat, n)
	case m.Epochs < 0 || m.Steps < 0 || m.Rows < 0 || !(m.Lambda > 0):
		return fmt.Errorf("%w: model counters or lambda out of range", ErrFormat)
	}
	for j := range n {
		if !(m.Std[j] > 0) || !finite(m.Mean[j]) || !finite(m.Std[j]) || !finite(m.Weights[j]) {
			return fmt.Errorf("%w: model feature %d has a bad mean, std or weight", ErrFormat, j)
		}
		if m.Features[j] == "" || slices.Contains(m.Features[:j], m.Features[j]) {
			return fmt.Errorf("%w: model feature %d: empty or repeated name", ErrFormat, j)
		}
	}
	if !finite(m.Bias) {
		return fmt.Errorf("%w: model bias is not finite", ErrFormat)
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
