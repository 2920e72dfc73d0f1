// Command socket tries to reach the network. It exits 0 only if an attempt succeeds.
package main

import (
	"net"
	"os"

	"github.com/styx-tee/styx/guest"
)

func main() {
	for _, addr := range []string{"127.0.0.1:80", "10.0.0.1:443", "[::1]:22"} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		} else {
			guest.Logf("dial %s: %v", addr, err)
		}
	}
	// Go's wasip1 port simulates listeners inside the program (no host socket), so a
	// successful Listen is not an escape; name lookups must fail.
	if addrs, err := net.LookupHost("example.com"); err == nil {
		guest.Logf("lookup: %v", addrs)
		return
	}
	os.Exit(1)
}
