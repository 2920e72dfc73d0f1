package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A goal is one figure a section checks against the goal, for the summary table and
// the -json output.
type goal struct {
	Section string  `json:"section"`
	Figure  string  `json:"figure"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"` // "x" for a ratio, "ms", …
	Goal    string  `json:"goal"`
	Paper   string  `json:"paper,omitempty"`
	Met     bool    `json:"met"`
}

func (g goal) String() string {
	met := "NOT MET"
	if g.Met {
		met = "met"
	}
	v := fmt.Sprintf("%.2f%s", g.Value, g.Unit)
	if g.Unit != "x" {
		v = fmt.Sprintf("%.2f %s", g.Value, g.Unit)
	}
	paper := ""
	if g.Paper != "" {
		paper = "  (paper: " + g.Paper + ")"
	}
	return fmt.Sprintf("%-42s %12s   goal %-10s %s%s", g.Figure, v, g.Goal, met, paper)
}

// report is what a section prints as JSON with -json.
type report struct {
	Section string         `json:"section"`
	Machine machine        `json:"machine"`
	Params  map[string]any `json:"params"`
	Figures map[string]any `json:"figures"`
	Goals   []goal         `json:"goals"`
}

func printJSON(r *report) error {
	if r.Machine.Go == "" {
		r.Machine = thisMachine()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type machine struct {
	CPU        string `json:"cpu"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Go         string `json:"go"`
	OS         string `json:"os"`
	// LoadAvg is the 1-minute load average when the section started: other work on the
	// machine (tests, builds) makes every figure noisier.
	LoadAvg string `json:"loadavg"`
}

func thisMachine() machine {
	return machine{CPU: cpuModel(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadAvg: loadAvg()}
}

func (m machine) String() string {
	return fmt.Sprintf("%s, %d CPUs (GOMAXPROCS %d), %s, %s, load average %s", m.CPU, m.NumCPU, m.GOMAXPROCS, m.Go, m.OS, m.LoadAvg)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b) + " unknown")[0]
}

// cpuModel reads the CPU model name from /proc/cpuinfo, where there is one.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// durations is a sample of latencies.
type durations []time.Duration

// pct returns the p-th percentile (0..100), nearest rank.
func (d durations) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (d durations) min() time.Duration { return slices.Min(d) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// line prints p50, p90 and min of a sample in milliseconds.
func (d durations) line(name string) string {
	return fmt.Sprintf("%-44s p50 %8.2f ms   p90 %8.2f ms   min %8.2f ms", name, ms(d.pct(50)), ms(d.pct(90)), ms(d.min()))
}

func (d durations) figures() map[string]float64 {
	return map[string]float64{"p50_ms": ms(d.pct(50)), "p90_ms": ms(d.pct(90)), "min_ms": ms(d.min()), "n": float64(len(d))}
}

// timed runs f and returns how long it took.
func timed(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

// blockProfiling asks startNode to turn block profiling on again once the node runs: the
// embedded NATS server sets the rate from its own options (0) when it starts.
var blockProfiling bool

// blockRate samples one blocking event per microsecond spent blocked.
const blockRate = 1000

// profileFlag adds -cpuprofile and -blockprofile to a section; call the returned function after
// fs.Parse, and the function it returns when the section ends. The block profile shows where the
// node's goroutines wait (locks, channels), which a CPU profile cannot.
func profileFlag(fs *flag.FlagSet) func() (stop func(), err error) {
	cpu := fs.String("cpuprofile", "", "write a CPU profile of the whole section (node included) to `FILE`")
	block := fs.String("blockprofile", "", "write a profile of blocking on locks and channels to `FILE`")
	return func() (func(), error) {
		var stops []func()
		stop := func() {
			for _, f := range stops {
				f()
			}
		}
		if *cpu != "" {
			f, err := os.Create(*cpu)
			if err != nil {
				return nil, err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return nil, err
			}
			stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
		}
		if *block != "" {
			f, err := os.Create(*block)
			if err != nil {
				stop()
				return nil, err
			}
			blockProfiling = true
			runtime.SetBlockProfileRate(blockRate)
			stops = append(stops, func() { pprof.Lookup("block").WriteTo(f, 0); f.Close() })
		}
		return stop, nil
	}
}

// cpuTime returns the user and system CPU time this process has used so far: a contender's
// CPU time is steadier than its wall time on a machine busy with other work.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cost is the wall and CPU time of one run.
type cost struct{ wall, cpu time.Duration }

// measured runs f and returns its wall and CPU time (the whole process's CPU: the node runs
// in this process too, so a job's CPU time includes the server's work).
func measured(f func() error) (cost, error) {
	c0, t0 := cpuTime(), time.Now()
	err := f()
	return cost{time.Since(t0), cpuTime() - c0}, err
}
