package sandbox

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/styx-tee/styx/guest"
	"github.com/styx-tee/styx/internal/ml"
)

// svmtrain reads the leading inputs that share a header into one dataset sized from their
// size hints; the model must still be bit for bit plain Go's over one dataset per input, in
// the inputs' order. Here three shares share a header, with values so short that the size
// hints underestimate their rows (the buffers must grow), and a last share has another
// column order (merged apart).
func TestSVMTrainSameHeaderSharesMatchPlainGo(t *testing.T) {
	r := newRuntime(t, Config{})
	split, _ := ml.Split(wdbc(t), 0.25, 1)
	shares := ml.Shares(split.Repeat(10), 4, 3)
	for i := range 3 { // every feature 0 or 1: about two bytes a value
		s := *shares[i]
		s.X = make([]float64, len(s.X))
		for j, v := range shares[i].X {
			if v > 10 {
				s.X[j] = 1
			}
		}
		shares[i] = &s
	}
	reordered := append([]string{ml.WDBCFeatures[1], ml.WDBCFeatures[0]}, ml.WDBCFeatures[2:]...)
	var err error
	if shares[3], err = shares[3].Project(reordered); err != nil {
		t.Fatal(err)
	}
	inputs := map[string][]byte{}
	hint, rows := 0, 0
	for i, s := range shares {
		name := fmt.Sprintf("h%d", i+1)
		inputs[name] = csvOf(t, s)
		hint += guest.Input{Size: int64(len(inputs[name]))}.RowsHint(len(s.Features) + 1)
		if i < 3 {
			rows += s.Rows()
		}
	}
	if hint >= rows {
		t.Fatalf("the size hints (%d rows) do not underestimate the %d rows of the shared header", hint, rows)
	}
	_, raw := train(t, r, inputs, `{"epochs":5,"seed":3}`)

	joint, err := ml.Merge(ml.CommonFeatures(shares...), shares...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ml.Train(ml.Go{}, joint, ml.Config{Epochs: 5, Seed: 3}, nil)
	wantRaw, _ := want.Marshal()
	if !bytes.Equal(raw, wantRaw) {
		t.Fatal("sandbox model differs from the plain Go model")
	}
}
