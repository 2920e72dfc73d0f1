// Command readfile tries to read the node's files. It exits 0 (and leaks what it read)
// only if an attempt succeeds.
package main

import (
	"os"

	"github.com/styx-tee/styx/guest"
)

func main() {
	for _, p := range []string{"/etc/passwd", "/proc/self/environ", ".", "/", "../../../etc/hostname"} {
		if b, err := os.ReadFile(p); err == nil {
			leak(b)
			return
		} else {
			guest.Logf("read %s: %v", p, err)
		}
		if ents, err := os.ReadDir(p); err == nil && len(ents) > 0 {
			leak([]byte(ents[0].Name()))
			return
		}
	}
	if f, err := os.Create("/tmp/styx-escape"); err == nil {
		f.Close()
		leak([]byte("created a file"))
		return
	}
	os.Exit(1)
}

func leak(b []byte) {
	w, err := guest.Create("out", guest.Table)
	if err == nil {
		w.Write(b)
		w.Close()
	}
}
