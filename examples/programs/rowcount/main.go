// Command rowcount counts the data rows (lines after the header) of every input and
// writes them as JSON to the aggregate output "count".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/styx-tee/styx/guest"
)

func main() {
	if err := run(); err != nil {
		guest.Logf("rowcount: %v", err)
		os.Exit(1)
	}
}

func run() error {
	ins, err := guest.Inputs()
	if err != nil {
		return err
	}
	counts := map[string]int64{}
	var total int64
	for _, in := range ins {
		n, err := countRows(in.Name)
		if err != nil {
			return err
		}
		counts[in.Name] = n
		total += n
	}
	out, err := guest.Create("count", guest.Aggregate)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(map[string]any{"inputs": counts, "total": total}); err != nil {
		return err
	}
	return out.Close()
}

func countRows(name string) (int64, error) {
	r, err := guest.Open(name)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	var lines int64
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			lines++
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if err == bufio.ErrBufferFull {
			lines-- // the same line continues
		}
	}
	return max(lines-1, 0), nil
}
