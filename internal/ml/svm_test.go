package ml

import (
	"bytes"
	"os"
	"testing"
)

func loadWDBC(t testing.TB) *Dataset {
	t.Helper()
	f, err := os.Open("../../examples/hospitals/data/wdbc.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := ReadWDBC(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWDBCShape(t *testing.T) {
	d := loadWDBC(t)
	if d.Rows() != 569 || len(d.Features) != 30 {
		t.Fatalf("got %d rows × %d features", d.Rows(), len(d.Features))
	}
	benign := 0
	for _, l := range d.Labels {
		benign += int(l)
	}
	if benign != 357 {
		t.Fatalf("benign = %d, want 357", benign)
	}
}

func TestTrainWDBCAccuracy(t *testing.T) {
	d := loadWDBC(t)
	train, test := Split(d, 0.25, 1)
	m, err := Train(Go{}, train, Config{Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := m.Accuracy(test)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("held-out accuracy %.4f on %d rows", acc, test.Rows())
	if acc < 0.95 {
		t.Fatalf("accuracy %.4f < 0.95", acc)
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	d := loadWDBC(t)
	a, _ := Train(Go{}, d, Config{Seed: 3, Epochs: 5}, nil)
	b, _ := Train(Go{}, d, Config{Seed: 3, Epochs: 5}, nil)
	ja, _ := a.Marshal()
	jb, _ := b.Marshal()
	if !bytes.Equal(ja, jb) {
		t.Fatal("same seed, different models")
	}
}

func TestSharesIntersectionAndFineTune(t *testing.T) {
	d := loadWDBC(t)
	train, test := Split(d, 0.25, 1)
	shares := Shares(train, 4, 9)
	dropped, err := shares[1].Project(WDBCFeatures[:20]) // one owner drops the "worst" columns
	if err != nil {
		t.Fatal(err)
	}
	feats := CommonFeatures(shares[0], dropped, shares[2])
	if len(feats) != 20 {
		t.Fatalf("common features = %d, want 20", len(feats))
	}
	joint, err := Merge(feats, shares[0], dropped, shares[2])
	if err != nil {
		t.Fatal(err)
	}
	m1, err := Train(Go{}, joint, Config{Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Train(Go{}, shares[3], Config{Seed: 2, Epochs: 10}, m1)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Epochs != m1.Epochs+10 || m2.Steps <= m1.Steps || len(m2.Features) != 20 {
		t.Fatalf("fine-tune did not continue: %+v", m2)
	}
	for _, m := range []*Model{m1, m2} {
		acc, _ := m.Accuracy(test)
		t.Logf("accuracy %.4f (epochs %d)", acc, m.Epochs)
		if acc < 0.93 {
			t.Fatalf("accuracy %.4f", acc)
		}
	}
	if _, err := Train(Go{}, dropped, Config{}, &Model{Format: ModelFormat}); err == nil {
		t.Fatal("invalid warm model accepted")
	}
}

func TestModelRoundTrip(t *testing.T) {
	d := loadWDBC(t)
	m, _ := Train(Go{}, d, Config{Epochs: 2}, nil)
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseModel(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := m2.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatal("round trip changed the model")
	}
}

func TestCSVRoundTrip(t *testing.T) {
	d := loadWDBC(t)
	var buf bytes.Buffer
	if err := d.WriteCSV(&buf, LabelColumn); err != nil {
		t.Fatal(err)
	}
	d2, err := ReadCSV(&buf, LabelColumn)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Rows() != d.Rows() || len(d2.Features) != 30 || d2.X[31] != d.X[31] {
		t.Fatal("csv round trip differs")
	}
}

func TestAnswer(t *testing.T) {
	m := &Model{Format: ModelFormat, Features: []string{"a", "b"}, Label: LabelColumn,
		Mean: []float64{0, 0}, Std: []float64{1, 1}, Weights: []float64{1, -1}, Lambda: 1}
	for _, c := range []struct{ in, want string }{
		{"b,a\n1,2\n5,1\n", `{"predictions":[{"label":1,"score":1},{"label":0,"score":-4}]}`},
		{`{"rows":[{"a":3,"b":1}]}`, `{"predictions":[{"label":1,"score":2}]}`},
		{"a\n1\n", ""},
		{`{"rows":[{"a":1}]}`, ""},
		{`{"rows":[],"x":1}`, ""},
		{"a,b\n", ""},
		{"a,b\n1,x\n", ""},
	} {
		got, err := m.Answer([]byte(c.in))
		if (err == nil) != (c.want != "") || (err == nil && string(got) != c.want) {
			t.Errorf("Answer(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestGemvAgainstLoops(t *testing.T) {
	a := []float64{1, 2, 3, 4, 5, 6} // 2×3
	y := []float64{1, 1}
	Gemv(false, 2, 3, 2, a, []float64{1, 0, -1}, 3, y)
	if y[0] != 2*(1-3)+3 || y[1] != 2*(4-6)+3 {
		t.Fatalf("gemv = %v", y)
	}
	z := []float64{1, 1, 1}
	Gemv(true, 2, 3, 1, a, []float64{1, -1}, 0.5, z)
	if z[0] != 0.5-3 || z[1] != 0.5-3 || z[2] != 0.5-3 {
		t.Fatalf("gemvᵀ = %v", z)
	}
	x := []float64{1, 2, 3, 4, 5}
	if Dot(x, x) != 55 {
		t.Fatal("dot")
	}
	Axpy(2, x, x)
	Scal(0.5, x)
	if x[4] != 7.5 {
		t.Fatalf("axpy/scal = %v", x)
	}
}

func TestReadCSVRejects(t *testing.T) {
	for _, in := range []string{
		"", "a,b\n1,2\n", "a,a,diagnosis\n", ",diagnosis\n", "a,diagnosis\n1,2\n",
		"a,diagnosis\nNaN,1\n", "a,diagnosis\nInf,1\n", "a,diagnosis\n1\n",
	} {
		if _, err := ReadCSV(bytes.NewReader([]byte(in)), LabelColumn); err == nil {
			t.Errorf("ReadCSV(%q) accepted", in)
		}
	}
}

func TestFromTable(t *testing.T) {
	d, err := FromTable([]string{"a", "diagnosis", "b"}, []float64{1, 0, 2, 3, 1, 4}, LabelColumn)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rows() != 2 || d.X[2] != 3 || d.X[3] != 4 || d.Labels[1] != 1 || d.Features[1] != "b" {
		t.Fatalf("dataset = %+v", d)
	}
	for _, c := range []struct {
		h []string
		v []float64
	}{
		{[]string{"a", "diagnosis"}, []float64{1, 2}},    // label not 0/1
		{[]string{"a", "diagnosis"}, []float64{1, 0, 1}}, // ragged
		{[]string{"a", "b"}, []float64{1, 0}},            // no label
		{[]string{"a", "a", "diagnosis"}, nil},           // repeated name
	} {
		if _, err := FromTable(c.h, c.v, LabelColumn); err == nil {
			t.Errorf("FromTable(%v, %v) accepted", c.h, c.v)
		}
	}
}

// TestAfterEpochCurve checks the training-curve hook: called once per epoch in order, with the
// model as it stands (the last call sees the returned model), without changing the training,
// and Fit agrees with Accuracy and falls as training proceeds.
func TestAfterEpochCurve(t *testing.T) {
	d := loadWDBC(t)
	type point struct{ obj, acc float64 }
	var curve []point
	cfg := Config{Seed: 3, Epochs: 8, AfterEpoch: func(e int, m *Model, p *Dataset) {
		if e != len(curve)+1 || len(p.Features) != len(m.Weights) {
			t.Fatalf("epoch %d after %d calls, %d features", e, len(curve), len(p.Features))
		}
		obj, acc := m.Fit(Go{}, p)
		curve = append(curve, point{obj, acc})
	}}
	m, err := Train(Go{}, d, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := Train(Go{}, d, Config{Seed: 3, Epochs: 8}, nil)
	ja, _ := m.Marshal()
	jb, _ := plain.Marshal()
	if !bytes.Equal(ja, jb) || len(curve) != 8 {
		t.Fatalf("the hook changed the training or was called %d times", len(curve))
	}
	acc, _ := m.Accuracy(d)
	last := curve[len(curve)-1]
	if last.acc != acc || !(last.obj < curve[0].obj) || last.obj <= 0 {
		t.Fatalf("fit %+v, accuracy %v, first objective %v", last, acc, curve[0].obj)
	}
}
