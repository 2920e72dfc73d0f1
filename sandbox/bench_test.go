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
