// Command readone is a test program given several inputs that reads only one: the input
// named by its parameters ({"input": "NAME"}). It writes that input's data rows (lines
// after the header), as JSON, to the aggregate output "count". It shows that a derived Pad
// descends from the Pads a program actually read, not from every input of its job.
package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"

	"github.com/styx-tee/styx/guest"
)

func main() {
	if err := run(); err != nil {
		guest.Logf("readone: %v", err)
		os.Exit(1)
	}
}

func run() error {
	p, err := guest.Params()
	if err != nil {
		return err
	}
	var params struct{ Input string }
	if err := json.Unmarshal(p, &params); err != nil {
		return err
	}
	r, err := guest.Open(params.Input)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return err
	}
	rows := max(bytes.Count(data, []byte{'\n'})-1, 0)
	out, err := guest.Create("count", guest.Aggregate)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(map[string]any{"input": params.Input, "rows": rows}); err != nil {
		return err
	}
	return out.Close()
}
