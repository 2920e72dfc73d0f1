// Command slowcount reads every input again and again, a small buffer at a time, and writes the
// bytes it read as JSON to the aggregate output "count". It exists to make a job that runs long
// and calls the host often: the lifecycle tests use it to expire or revoke an input while the
// job runs. Params: {"passes": N} (default 1) is how many times each input is read.
package main

import (
	"encoding/json"
	"io"
	"os"

	"github.com/styx-tee/styx/guest"
)

func main() {
	if err := run(); err != nil {
		guest.Logf("slowcount: %v", err)
		os.Exit(1)
	}
}

func run() error {
	var params struct{ Passes int }
	params.Passes = 1
	if err := guest.ParamsJSON(&params); err != nil {
		return err
	}
	ins, err := guest.Inputs()
	if err != nil {
		return err
	}
	var total int64
	buf := make([]byte, 64)
	for range params.Passes {
		for _, in := range ins {
			n, err := readAll(in.Name, buf)
			if err != nil {
				return err
			}
			total += n
		}
	}
	out, err := guest.Create("count", guest.Aggregate)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(map[string]any{"bytes": total, "passes": params.Passes}); err != nil {
		return err
	}
	return out.Close()
}

func readAll(name string, buf []byte) (int64, error) {
	r, err := guest.Open(name)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
