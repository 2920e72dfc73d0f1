// Command svmpredict is a reactor program (build with -buildmode=c-shared): its
// initialisation loads the model from the input "model" once, then the sandbox calls it
// once per query on the same warm instance. A query is CSV with a header row or JSON
// {"rows":[{feature: value}]}; the answer is JSON {"predictions":[{"label","score"}]}.
package main

import (
	"bytes"
	"errors"
	"io"

	"github.com/styx-tee/styx/guest"
	"github.com/styx-tee/styx/internal/ml"
)

var (
	model   *ml.Model
	loadErr error
)

func init() {
	model, loadErr = load()
	if loadErr != nil {
		guest.Logf("svmpredict: loading the model: %v", loadErr)
	}
	guest.Serve(answer)
}

func load() (*ml.Model, error) {
	r, err := guest.Open("model")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ml.ReadModel(r)
}

// What the CSV path reuses from query to query: in WebAssembly every allocation and every
// pass over the header costs, so the feature columns are found once per header (the guest
// hands out the same Header slice while it does not change) and the buffers are kept.
var (
	header []string // the header cols was computed for
	cols   []int    // the column of each model feature in that header
	values []float64
	out    []byte
)

func answer(req []byte) ([]byte, error) {
	if model == nil {
		return nil, errors.Join(errors.New("no model"), loadErr)
	}
	if t := bytes.TrimSpace(req); len(t) > 0 && t[0] == '{' {
		return model.Answer(req) // JSON: parsed in the guest
	}
	t, err := guest.OpenQueryTable() // CSV: parsed natively by the host
	if err != nil {
		return nil, err
	}
	h := t.Header()
	if !sameSlice(h, header) {
		c, err := model.Columns(h)
		if err != nil {
			return nil, err
		}
		header, cols = h, c
	}
	if values, err = readAll(t, values[:0], len(h)); err != nil {
		return nil, err
	}
	out, err = model.AppendAnswer(out[:0], cols, len(h), values)
	return out, err
}

// sameSlice reports whether a and b are the same slice (not merely equal).
func sameSlice(a, b []string) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// readAll appends every row of t to dst (rows of width values).
func readAll(t *guest.Frame, dst []float64, width int) ([]float64, error) {
	for {
		if cap(dst)-len(dst) < max(width, 1) {
			dst = append(make([]float64, 0, 2*cap(dst)+64*width), dst...)
		}
		n, err := t.ReadFloats(dst[len(dst):cap(dst)])
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
		dst = dst[:len(dst)+n]
	}
}

func main() {}
