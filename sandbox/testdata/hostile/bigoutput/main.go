// Command bigoutput writes to its output without end.
package main

import "github.com/styx-tee/styx/guest"

func main() {
	w, err := guest.Create("out", guest.Table)
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := w.Write(buf); err != nil {
			panic(err)
		}
	}
}
