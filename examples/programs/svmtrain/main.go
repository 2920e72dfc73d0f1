// Command svmtrain trains a linear SVM (internal/ml) on every CSV input, over the
// features all inputs share, with the native host kernels. An input named "model" (or of
// kind "model") is a model to fine-tune. Params: JSON of ml.Config plus "label" and
// "curve". It writes the model as JSON to the output "model" of kind model. With
// "curve": true it also writes its training curve to the job's log (an output under
// policy, like every log), one line per epoch:
//
//	svmtrain: epoch 3 objective 0.081234 train_accuracy 0.9753
//
// the L2-regularised hinge objective and the accuracy over all training rows: aggregates,
// never a row. The curve costs one more pass over the data per epoch.
package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/styx-tee/styx/guest"
	"github.com/styx-tee/styx/internal/ml"
)

type params struct {
	ml.Config
	Label string `json:"label"`
	Curve bool   `json:"curve"`
}

func main() {
	if err := run(); err != nil {
		guest.Logf("svmtrain: %v", err)
		os.Exit(1)
	}
}

func run() error {
	p := params{Label: ml.LabelColumn}
	if err := guest.ParamsJSON(&p); err != nil {
		return fmt.Errorf("params: %w", err)
	}
	ins, err := guest.Inputs()
	if err != nil {
		return err
	}
	var tables []guest.Input
	var warm *ml.Model
	for _, in := range ins {
		if in.Name == "model" || in.Kind == "model" {
			if warm, err = readModel(in.Name); err != nil {
				return err
			}
			continue
		}
		tables = append(tables, in)
	}
	sets, err := readCSVs(tables, p.Label)
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		return fmt.Errorf("no data inputs")
	}
	feats := ml.CommonFeatures(sets...)
	if warm != nil {
		feats = warm.Features
	}
	data, err := ml.Merge(feats, sets...)
	if err != nil {
		return err
	}
	if p.Curve {
		p.AfterEpoch = logCurve
	}
	m, err := ml.Train(guest.Kernels{}, data, p.Config, warm)
	if err != nil {
		return err
	}
	guest.Logf("svmtrain: %d rows, %d features, %d epochs in total", data.Rows(), len(feats), m.Epochs)
	return writeModel(m)
}

// logCurve logs one point of the training curve; the format is documented above.
func logCurve(epoch int, m *ml.Model, d *ml.Dataset) {
	obj, acc := m.Fit(guest.Kernels{}, d)
	guest.Logf("svmtrain: epoch %d objective %.6f train_accuracy %.4f", epoch, obj, acc)
}

// readCSVs reads the numeric CSV inputs, parsed natively by the host, in their order. The
// leading inputs with the same header (the usual case: shares of one data set) are read into
// one dataset sized for all of them, so that ml.Merge has less to copy, or nothing: in wasm a
// copy of the rows and the fresh memory it needs cost milliseconds. The rows, and their
// order, are those of one dataset per input.
func readCSVs(ins []guest.Input, label string) ([]*ml.Dataset, error) {
	var sets []*ml.Dataset
	var header []string // the first input's, while the inputs share it
	for i, in := range ins {
		t, err := guest.OpenTable(in.Name)
		if err != nil {
			return nil, err
		}
		li, feats, err := ml.LabelIndex(t.Header(), label)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		shared := i > 0 && header != nil && slices.Equal(t.Header(), header)
		var x, y []float64
		switch {
		case shared:
			x, y = sets[0].X, sets[0].Labels
		case i == 0:
			header = t.Header()
			rows := 0
			for _, in := range ins {
				rows += in.RowsHint(len(header))
			}
			x, y = make([]float64, 0, rows*len(feats)), make([]float64, 0, rows)
		default:
			header = nil
			x, y = make([]float64, 0, t.RowsHint()*len(feats)), make([]float64, 0, t.RowsHint())
		}
		from := len(y)
		x, y, err = t.ReadSplitInto(li, x, y)
		t.Close()
		if err != nil {
			return nil, err
		}
		d, err := ml.FromColumns(feats, x[from*len(feats):], y[from:]) // checked per input, to name it
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		if shared {
			sets[0].X, sets[0].Labels = x, y
		} else {
			sets = append(sets, d)
		}
	}
	return sets, nil
}

func readModel(name string) (*ml.Model, error) {
	r, err := guest.Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ml.ReadModel(r)
}

func writeModel(m *ml.Model) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	out, err := guest.Create("model", guest.Model)
	if err != nil {
		return err
	}
	if _, err := out.Write(b); err != nil {
		return err
	}
	return out.Close()
}
