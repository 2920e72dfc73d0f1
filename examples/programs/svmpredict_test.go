package programs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/sandbox"
)

// modelHost gives a serving instance its model and nothing else.
type modelHost struct{ model []byte }

func (h modelHost) Inputs() []sandbox.Input {
	return []sandbox.Input{{Name: "model", Kind: "model", Size: int64(len(h.model))}}
}
func (h modelHost) Params() []byte { return nil }
func (h modelHost) Open(name string) (io.Reader, error) {
	if name != "model" {
		return nil, errors.New("no such input")
	}
	return bytes.NewReader(h.model), nil
}
func (h modelHost) Create(string, sandbox.Kind) (io.WriteCloser, error) {
	return nil, errors.New("no outputs")
}
func (h modelHost) Log([]byte) {}

// svmpredict keeps what it derived from the last query's header (the feature columns) and
// its buffers between queries: queries whose header changes, grows, shrinks, lacks a feature
// or comes back are each answered exactly as plain Go answers them.
func TestSVMPredictAnswersEveryHeader(t *testing.T) {
	ctx := context.Background()
	f, err := os.Open("../hospitals/data/wdbc.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := ml.ReadWDBC(f)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ml.Train(ml.Go{}, d, ml.Config{Epochs: 3, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := wasmbuild.Build(ctx, "examples/programs/svmpredict", true)
	if err != nil {
		t.Fatal(err)
	}
	r, err := sandbox.New(ctx, sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	p, err := r.Compile(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	in, err := r.Warm(ctx, p, modelHost{raw})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)

	var all bytes.Buffer
	if err := d.WriteCSV(&all, ml.LabelColumn); err != nil {
		t.Fatal(err)
	}
	wide := all.String()
	narrow, err := d.Project(ml.WDBCFeatures[:29]) // lacks a feature
	if err != nil {
		t.Fatal(err)
	}
	var nb bytes.Buffer
	if err := narrow.WriteCSV(&nb, ""); err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(ml.WDBCFeatures)
	slices.Reverse(rev)
	reversed, err := d.Project(rev)
	if err != nil {
		t.Fatal(err)
	}
	var rb bytes.Buffer
	if err := reversed.WriteCSV(&rb, ""); err != nil {
		t.Fatal(err)
	}
	queries := []string{rows(wide, 0, 1), rows(wide, 5, 3), rows(rb.String(), 7, 2), rows(nb.String(), 0, 1),
		rows(wide, 40, 60), rows(rb.String(), 2, 1), `{"rows":[{}]}`, rows(wide, 100, 1)}
	for i, q := range queries {
		want, wantErr := m.Answer([]byte(q))
		got, err := in.Query(ctx, []byte(q))
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("query %d: %.80s (%v), plain Go %.80s (%v)", i, got, err, want, wantErr)
		}
	}
}

// rows returns the header of csv and n rows from row first.
func rows(csv string, first, n int) string {
	lines := strings.SplitAfter(csv, "\n")
	return lines[0] + strings.Join(lines[1+first:1+first+n], "")
}
