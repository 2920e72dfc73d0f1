// Command env looks for the node's environment, arguments and real time. It exits 0
// only if it finds any.
package main

import (
	"os"
	"time"

	"github.com/styx-tee/styx/guest"
)

func main() {
	guest.Logf("environ %d, args %q, now %v, getenv %q", len(os.Environ()), os.Args, time.Now().UTC(), os.Getenv("STYX_SANDBOX_SECRET"))
	if len(os.Environ()) > 0 || len(os.Args) != 1 || os.Getenv("STYX_SANDBOX_SECRET") != "" {
		return
	}
	h, _ := os.Hostname()
	guest.Logf("hostname %q", h)
	os.Exit(1)
}
