//go:build unix

package engine

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
)

// BenchmarkAdmission times one decision of a job on three Pads under use limits (every input's
// chain and counters read, "use" and "derive" decided; nothing reserved or written), its reads
// made one request each and read ahead (store.ReadMany). cpu-ns/op is the process's CPU time
// per decision, the embedded server's included.
func BenchmarkAdmission(b *testing.B) {
	ctx := context.Background()
	e := newTestEngine(b)
	limited := "lifecycle: {max_uses: {use: 1000000}}"
	w := newWorld(b, e, limited)
	spec := &api.JobSpec{Program: w.prog, Purpose: "research", Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}},
		Inputs: map[string]string{"a": w.pad, "b": w.upload(b, limited), "c": w.upload(b, limited)}}
	caller := w.owner.Identity().ID()
	for _, mode := range []struct {
		name      string
		readAhead bool
	}{{"one-by-one", false}, {"read-ahead", true}} {
		b.Run(mode.name, func(b *testing.B) {
			e.noReadAhead = !mode.readAhead
			cpu := processCPU()
			for b.Loop() {
				a, err := e.admit(ctx, caller, "job", spec, false, nil)
				if err != nil || !a.allowed {
					b.Fatalf("admission: %v %v", err, a.reasons())
				}
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
