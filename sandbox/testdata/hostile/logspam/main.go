// Command logspam floods its log and stdout, then ends normally.
package main

import (
	"fmt"
	"strings"

	"github.com/styx-tee/styx/guest"
)

func main() {
	line := strings.Repeat("x", 1000)
	for i := range 2000 {
		guest.Logf("%d %s", i, line)
		fmt.Println(line)
	}
}
