//go:build unix

package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/styx-tee/styx/internal/ml"
)

// cpuMeter reports the process's CPU time per operation next to the wall time, because a
// shared machine's load distorts wall time (the ratio of CPU times stays meaningful).
type cpuMeter struct{ start int64 }

func cpuNanos() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func startCPU(b *testing.B) *cpuMeter { b.ResetTimer(); return &cpuMeter{cpuNanos()} }

func (m *cpuMeter) stop(b *testing.B) {
	b.ReportMetric(float64(cpuNanos()-m.start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSVMTrain compares the svmtrain program in the sandbox (instantiation, CSV
// parsing in wasm, training with the native host kernels, model output) with the same
// steps in plain Go, on the WDBC data and on 100× its rows.
func BenchmarkSVMTrain(b *testing.B) {
	for _, scale := range []int{1, 100} {
		data := csvOf(b, wdbc(b).Repeat(scale))
		params := `{"epochs":50,"seed":1}`
		b.Run(fmt.Sprintf("rows=%dx/plain-go", scale), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			cpu := startCPU(b)
			defer cpu.stop(b)
			for b.Loop() {
				d, err := ml.ReadCSV(bytes.NewReader(data), ml.LabelColumn)
				if err != nil {
					b.Fatal(err)
				}
				m, err := ml.Train(ml.Go{}, d, ml.Config{Epochs: 50, Seed: 1}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%dx/sandbox", scale), func(b *testing.B) {
			r := newRuntime(b, Config{MemoryLimit: 1 << 30})
			wasm := build(b, "examples/programs/svmtrain", false)
			if _, err := r.Compile(context.Background(), wasm); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			cpu := startCPU(b)
			defer cpu.stop(b)
			for b.Loop() {
				h := newHost(map[string][]byte{"data": data}, map[string]Kind{"model": KindModel})
				h.params = []byte(params)
				if _, err := r.Run(context.Background(), wasm, h); err != nil {
					b.Fatalf("%v (log %q)", err, h.log())
				}
			}
		})
	}
}

// BenchmarkQuery compares one prediction query on a warm instance with plain Go.
func BenchmarkQuery(b *testing.B) {
	r := newRuntime(b, Config{})
	d := wdbc(b)
	m, err := ml.Train(ml.Go{}, d, ml.Config{Epochs: 5}, nil)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := m.Marshal()
	_, test := ml.Split(d, 0.01, 1)
	query := csvOf(b, test)
	b.Run("plain-go", func(b *testing.B) {
		cpu := startCPU(b)
		defer cpu.stop(b)
		for b.Loop() {
			if _, err := m.Answer(query); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sandbox-warm", func(b *testing.B) {
		in := warmPredict(b, r, raw)
		cpu := startCPU(b)
		defer cpu.stop(b)
		for b.Loop() {
			if _, err := in.Query(context.Background(), query); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRunOverhead measures instantiating and running the smallest Go program.
func BenchmarkRunOverhead(b *testing.B) {
	r := newRuntime(b, Config{})
	wasm := build(b, "examples/programs/rowcount", false)
	if _, err := r.Compile(context.Background(), wasm); err != nil {
		b.Fatal(err)
	}
	cpu := startCPU(b)
	defer cpu.stop(b)
	for b.Loop() {
		h := newHost(map[string][]byte{"x": []byte(smallCSV)}, map[string]Kind{"count": KindAggregate})
		if _, err := r.Run(context.Background(), wasm, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSVMTrainShares is the setup of `go run ./bench train`: the WDBC training split
// repeated 50 times in three stratified shares that svmtrain merges, with 50 epochs and
// with one (their difference is the cost of the epochs alone).
func BenchmarkSVMTrainShares(b *testing.B) {
	train, _ := ml.Split(wdbc(b), 0.2, 2026)
	inputs := map[string][]byte{}
	var shares [][]byte
	for i, s := range ml.Shares(train.Repeat(50), 3, 7) {
		shares = append(shares, csvOf(b, s))
		inputs[fmt.Sprintf("h%d", i+1)] = shares[i]
	}
	for _, epochs := range []int{1, 50} {
		cfg := ml.Config{Epochs: epochs, Seed: 1}
		b.Run(fmt.Sprintf("epochs=%d/plain-go", epochs), func(b *testing.B) {
			cpu := startCPU(b)
			defer cpu.stop(b)
			for b.Loop() {
				var sets []*ml.Dataset
				for _, s := range shares {
					d, err := ml.ReadCSV(bytes.NewReader(s), ml.LabelColumn)
					if err != nil {
						b.Fatal(err)
					}
					sets = append(sets, d)
				}
				d, err := ml.Merge(ml.CommonFeatures(sets...), sets...)
				if err != nil {
					b.Fatal(err)
				}
				m, err := ml.Train(ml.Go{}, d, cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Marshal(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("epochs=%d/sandbox", epochs), func(b *testing.B) {
			r := newRuntime(b, Config{MemoryLimit: 2 << 30})
			wasm := build(b, "examples/programs/svmtrain", false)
			p, err := r.Compile(context.Background(), wasm)
			if err != nil {
				b.Fatal(err)
			}
			cpu := startCPU(b)
			defer cpu.stop(b)
			for b.Loop() {
				h := newHost(inputs, map[string]Kind{"model": KindModel})
				h.params = fmt.Appendf(nil, `{"epochs":%d,"seed":1}`, epochs)
				if _, err := r.RunProgram(context.Background(), p, h); err != nil {
					b.Fatalf("%v (log %q)", err, h.log())
				}
			}
		})
	}
}
