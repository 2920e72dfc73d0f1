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
