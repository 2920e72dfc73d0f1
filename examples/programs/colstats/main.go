// Command colstats computes, over every input (CSV with a header row), the count, mean
// and standard deviation of every numeric column, and writes them as JSON to the
// aggregate output "stats". Columns are matched by name across inputs.
package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/styx-tee/styx/guest"
)

type acc struct{ n, mean, m2 float64 } // Welford

func (a *acc) add(v float64) {
	a.n++
	d := v - a.mean
	a.mean += d / a.n
	a.m2 += d * (v - a.mean)
}

type stat struct {
	Column string  `json:"column"`
	Count  float64 `json:"count"`
	Mean   float64 `json:"mean"`
	Std    float64 `json:"std"`
}

func main() {
	if err := run(); err != nil {
		guest.Logf("colstats: %v", err)
		os.Exit(1)
	}
}

func run() error {
	ins, err := guest.Inputs()
	if err != nil {
		return err
	}
	accs, order := map[string]*acc{}, []string{}
	for _, in := range ins {
		if err := scan(in.Name, accs, &order); err != nil {
			return err
		}
	}
	var stats []stat
	for _, c := range order {
		a := accs[c]
		stats = append(stats, stat{c, a.n, a.mean, math.Sqrt(a.m2 / math.Max(a.n, 1))})
	}
	out, err := guest.Create("stats", guest.Aggregate)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(stats); err != nil {
		return err
	}
	return out.Close()
}

func scan(name string, accs map[string]*acc, order *[]string) error {
	r, err := guest.Open(name)
	if err != nil {
		return err
	}
	defer r.Close()
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return err
	}
	cols := make([]*acc, len(header))
	for i, h := range header {
		if accs[h] == nil {
			accs[h] = &acc{}
			*order = append(*order, h)
		}
		cols[i] = accs[h]
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for i, s := range rec {
			if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				cols[i].add(v)
			}
		}
	}
}
