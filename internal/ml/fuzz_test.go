package ml

import (
	"bytes"
	"testing"
)

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("a,b,diagnosis\n1,2,0\n3,4,1\n"))
	f.Add([]byte("diagnosis\n1\n"))
	f.Add([]byte("a,a,diagnosis\n1,2,0\n"))
	f.Add([]byte("a,diagnosis\nNaN,0\n"))
	f.Add([]byte("a,diagnosis\n1e400,0\n"))
	f.Add([]byte("\"a\nb\",diagnosis\n1,2\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ReadCSV(bytes.NewReader(in), LabelColumn)
		if err != nil {
			return
		}
		if len(d.X) != d.Rows()*len(d.Features) {
			t.Fatalf("%d values for %d rows × %d features", len(d.X), d.Rows(), len(d.Features))
		}
		var out bytes.Buffer
		if err := d.WriteCSV(&out, LabelColumn); err != nil {
			t.Fatal(err)
		}
		d2, err := ReadCSV(&out, LabelColumn)
		if err != nil || d2.Rows() != d.Rows() {
			t.Fatalf("re-read: %v", err)
		}
	})
}

func seedModel(f *testing.F) *Model {
	m := &Model{Format: ModelFormat, Features: []string{"a", "b"}, Label: LabelColumn,
		Mean: []float64{1, 2}, Std: []float64{1, 0.5}, Weights: []float64{0.3, -0.2}, Bias: 0.1,
		Lambda: 1e-3, Epochs: 3, Steps: 9, Rows: 10}
	b, _ := m.Marshal()
	f.Add(b)
	return m
}

func FuzzParseModel(f *testing.F) {
	seedModel(f)
	f.Add([]byte(`{"format":"styx-linear-svm/v1","features":["a"],"mean":[0],"std":[0],"weights":[1],"lambda":1}`))
	f.Add([]byte(`{"format":"styx-linear-svm/v1"} {}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseModel(in)
		if err != nil {
			return
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseModel(b)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if b2, _ := m2.Marshal(); !bytes.Equal(b, b2) {
			t.Fatal("marshal not stable")
		}
	})
}

func FuzzAnswer(f *testing.F) {
	m := seedModel(f)
	f.Add([]byte("a,b\n1,2\n3,4\n"))
	f.Add([]byte("b,a,diagnosis\n1,2,0\n"))
	f.Add([]byte(`{"rows":[{"a":1,"b":2}]}`))
	f.Add([]byte(`{"rows":[{"a":1}]}`))
	f.Add([]byte(`{"rows":[]}`))
	f.Add([]byte("a\n1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := m.Answer(in)
		if err == nil && !bytes.HasPrefix(out, []byte(`{"predictions":[`)) {
			t.Fatalf("answer %q", out)
		}
	})
}
