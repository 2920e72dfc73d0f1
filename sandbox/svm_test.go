package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/styx-tee/styx/internal/ml"
)

func wdbc(t testing.TB) *ml.Dataset {
	t.Helper()
	f, err := os.Open("../examples/hospitals/data/wdbc.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := ml.ReadWDBC(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func csvOf(t testing.TB, d *ml.Dataset) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := d.WriteCSV(&b, ml.LabelColumn); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// hospitals returns three training shares (the second without the "worst" columns), a
// fourth share for fine-tuning and the held-out test set.
func hospitals(t testing.TB) (shares []*ml.Dataset, test *ml.Dataset) {
	train, test := ml.Split(wdbc(t), 0.25, 1)
	shares = ml.Shares(train, 4, 2)
	var err error
	if shares[1], err = shares[1].Project(ml.WDBCFeatures[:20]); err != nil {
		t.Fatal(err)
	}
	return shares, test
}

func train(t testing.TB, r *Runtime, inputs map[string][]byte, params string) (*ml.Model, []byte) {
	t.Helper()
	h := newHost(inputs, map[string]Kind{"model": KindModel})
	h.kinds["model"] = "model"
	h.params = []byte(params)
	if _, err := r.Run(context.Background(), build(t, "examples/programs/svmtrain", false), h); err != nil {
		t.Fatalf("svmtrain: %v (log %q)", err, h.log())
	}
	m, err := ml.ParseModel(h.output("model"))
	if err != nil {
		t.Fatal(err)
	}
	return m, h.output("model")
}

// TestSVMTrainMatchesPlainGo trains jointly in the sandbox over three shares (one with
// fewer columns), checks the model is bit-for-bit the one plain Go trains on the same
// rows, that it reaches 0.95 on held-out data, and that fine-tuning continues it.
func TestSVMTrainMatchesPlainGo(t *testing.T) {
	r := newRuntime(t, Config{})
	shares, test := hospitals(t)
	inputs := map[string][]byte{"h1": csvOf(t, shares[0]), "h2": csvOf(t, shares[1]), "h3": csvOf(t, shares[2])}
	m1, raw := train(t, r, inputs, `{"epochs":50,"seed":7}`)

	feats := ml.CommonFeatures(shares[0], shares[1], shares[2])
	joint, _ := ml.Merge(feats, shares[0], shares[1], shares[2])
	want, _ := ml.Train(ml.Go{}, joint, ml.Config{Epochs: 50, Seed: 7}, nil)
	wantRaw, _ := want.Marshal()
	if !bytes.Equal(raw, wantRaw) {
		t.Fatal("sandbox model differs from the plain Go model")
	}
	if len(m1.Features) != 20 {
		t.Fatalf("trained on %d features, want the 20 common ones", len(m1.Features))
	}
	acc, _ := m1.Accuracy(test)
	t.Logf("joint model: accuracy %.4f", acc)
	if acc < 0.95 {
		t.Fatalf("accuracy %.4f < 0.95", acc)
	}

	m2, _ := train(t, r, map[string][]byte{"h4": csvOf(t, shares[3]), "model": raw}, `{"epochs":10,"seed":8}`)
	if m2.Epochs != 60 || m2.Steps <= m1.Steps {
		t.Fatalf("fine-tuning did not continue the model: epochs %d steps %d", m2.Epochs, m2.Steps)
	}
	acc2, _ := m2.Accuracy(test)
	t.Logf("fine-tuned model: accuracy %.4f", acc2)
	if acc2 < 0.95 {
		t.Fatalf("fine-tuned accuracy %.4f < 0.95", acc2)
	}
}

func TestSVMTrainBadParams(t *testing.T) {
	r := newRuntime(t, Config{})
	h := newHost(map[string][]byte{"a": []byte(smallCSV)}, map[string]Kind{"model": KindModel})
	h.params = []byte(`{"epochs":"many"}`)
	_, err := r.Run(context.Background(), build(t, "examples/programs/svmtrain", false), h)
	if !errors.Is(err, ErrExit) || h.output("model") != nil {
		t.Fatalf("err = %v, output %q", err, h.output("model"))
	}
}

func warmPredict(t testing.TB, r *Runtime, model []byte) *Instance {
	t.Helper()
	p, err := r.Compile(context.Background(), build(t, "examples/programs/svmpredict", true))
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(map[string][]byte{"model": model}, nil)
	in, err := r.Warm(context.Background(), p, h)
	if err != nil {
		t.Fatalf("warm: %v (log %q)", err, h.log())
	}
	t.Cleanup(func() { in.Close(context.Background()) })
	return in
}

func TestWarmPredict(t *testing.T) {
	r := newRuntime(t, Config{})
	shares, test := hospitals(t)
	m, raw := train(t, r, map[string][]byte{"h1": csvOf(t, shares[0])}, `{"epochs":20}`)
	in := warmPredict(t, r, raw)

	query := csvOf(t, test)
	for i := range 3 { // the same warm instance answers repeatedly
		got, err := in.Query(context.Background(), query)
		if err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		want, _ := m.Answer(query)
		if !bytes.Equal(got, want) {
			t.Fatalf("query %d: sandbox answer differs from plain Go", i)
		}
	}
	jsonQ := fmt.Sprintf(`{"rows":[{%s}]}`, jsonRow(m.Features, test.Row(0), test.Features))
	if _, err := in.Query(context.Background(), []byte(jsonQ)); err != nil {
		t.Fatalf("json query: %v", err)
	}
	// A bad query is refused by the program; the instance keeps serving.
	if _, err := in.Query(context.Background(), []byte("nope\n1\n")); !errors.Is(err, ErrExit) {
		t.Fatalf("bad query: %v", err)
	}
	if _, err := in.Query(context.Background(), query); err != nil {
		t.Fatalf("query after a refused one: %v", err)
	}
	big := make([]byte, r.cfg.MaxMessage+1)
	if _, err := in.Query(context.Background(), big); !errors.Is(err, ErrLimit) {
		t.Fatalf("oversized query: %v", err)
	}
}

func jsonRow(model []string, row []float64, features []string) string {
	var b bytes.Buffer
	for i, f := range model {
		for j, g := range features {
			if g == f {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%q:%v", f, row[j])
			}
		}
	}
	return b.String()
}

func TestWarmWithoutModel(t *testing.T) {
	r := newRuntime(t, Config{})
	in := warmPredict(t, r, []byte("not a model"))
	if _, err := in.Query(context.Background(), []byte("a\n1\n")); !errors.Is(err, ErrExit) {
		t.Fatalf("query without a model: %v", err)
	}
}

func TestPoolConcurrentQueries(t *testing.T) {
	r := newRuntime(t, Config{})
	shares, test := hospitals(t)
	m, raw := train(t, r, map[string][]byte{"h1": csvOf(t, shares[0])}, `{"epochs":5}`)
	p, err := r.Compile(context.Background(), build(t, "examples/programs/svmpredict", true))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := r.NewPool(p, 2, func() Host { return newHost(map[string][]byte{"model": raw}, nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	query := csvOf(t, test)
	want, _ := m.Answer(query)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := pool.Query(context.Background(), query)
			if err == nil && !bytes.Equal(got, want) {
				err = errors.New("wrong answer")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSVMTrainRejectsBadTables(t *testing.T) {
	r := newRuntime(t, Config{})
	for _, in := range []string{
		"a,diagnosis\n1,0\nx,1\n", // not a number
		"a,diagnosis\n1,0\n2\n",   // ragged
		"a,diagnosis\nNaN,0\n",    // not finite
		"a,diagnosis\n1,2\n",      // label not 0/1
		"",                        // no header
		"a,b\n1,0\n",              // no label column
	} {
		h := newHost(map[string][]byte{"data": []byte(in)}, map[string]Kind{"model": KindModel})
		_, err := r.Run(context.Background(), build(t, "examples/programs/svmtrain", false), h)
		if !errors.Is(err, ErrExit) || h.output("model") != nil {
			t.Errorf("%q: err = %v, output %q", in, err, h.output("model"))
		}
	}
}
