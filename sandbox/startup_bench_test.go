//go:build unix

package sandbox

import (
	"context"
	"fmt"
	"testing"

	"github.com/styx-tee/styx/internal/ml"
)

// BenchmarkStartup splits the fixed cost of a job's program start: instantiating the module
// (memory, data segments, globals; no guest code runs) against the whole run (instantiate,
// then _start: the Go runtime's start and the program's own work: for rowcount on three
// rows, next to nothing; for svmtrain, parsing the shares of BenchmarkSVMTrainShares and one
// epoch).
func BenchmarkStartup(b *testing.B) {
	train, _ := ml.Split(wdbc(b), 0.2, 2026)
	inputs := map[string][]byte{}
	for i, s := range ml.Shares(train.Repeat(50), 3, 7) {
		inputs[fmt.Sprintf("h%d", i+1)] = csvOf(b, s)
	}
	for _, pkg := range []string{"rowcount", "svmtrain"} {
		r := newRuntime(b, Config{MemoryLimit: 2 << 30})
		p, err := r.Compile(context.Background(), build(b, "examples/programs/"+pkg, false))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(pkg+"/instantiate", func(b *testing.B) {
			cpu := startCPU(b)
			defer cpu.stop(b)
			for b.Loop() {
				st := newRun(r.cfg, newHost(nil, nil))
				mem := newMemory(r.cfg.Logger)
				ctx := context.WithValue(context.Background(), runKey{}, st)
				mod, err := r.rt.InstantiateModule(mem.attach(ctx), p.cm, r.moduleConfig(st).WithStartFunctions())
				if err != nil {
					b.Fatal(err)
				}
				mod.Close(ctx)
				mem.leave()
				mem.end()
			}
		})
		b.Run(pkg+"/run", func(b *testing.B) {
			cpu := startCPU(b)
			defer cpu.stop(b)
			for b.Loop() {
				var h *memHost
				if pkg == "rowcount" {
					h = newHost(map[string][]byte{"x": []byte(smallCSV)}, map[string]Kind{"count": KindAggregate})
				} else {
					h = newHost(inputs, map[string]Kind{"model": KindModel})
					h.params = []byte(`{"epochs":1,"seed":1}`)
				}
				if _, err := r.RunProgram(context.Background(), p, h); err != nil {
					b.Fatalf("%v (log %q)", err, h.log())
				}
			}
		})
	}
}
