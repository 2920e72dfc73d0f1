// Command hostile is the sandbox's escape and exhaustion catalogue in one program (one
// compilation): the job parameter names the attack, as is (the sandbox's tests) or as
// {"attack": NAME} (jobs submitted to a node, whose parameters are JSON objects). An
// escape attempt exits 0 (and leaks what it got to the output "out") only if it succeeds;
// otherwise it logs why it failed and exits 1. Exhaustion attacks never end on their own.
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/styx-tee/styx/guest"
)

var attacks = map[string]func() bool{
	"readfile":  readFile,
	"socket":    socket,
	"env":       env,
	"loop":      loop,
	"membomb":   memBomb,
	"bigoutput": bigOutput,
	"recursion": func() bool { return deep(0) > 0 },
	"logspam":   logSpam,
}

// As a reactor (-buildmode=c-shared) the same program answers queries: a query names an
// attack to run during the query (or "churn"), anything else is echoed.
func init() {
	guest.Serve(func(req []byte) ([]byte, error) {
		switch string(req) {
		case "loop":
			loop()
		case "membomb":
			memBomb()
		case "churn":
			churn()
		case "huge-response":
			return make([]byte, 2<<20), nil
		}
		return req, nil
	})
}

func main() {
	p, err := guest.Params()
	if err != nil {
		panic(err)
	}
	attack := attacks[attackName(p)]
	if attack == nil {
		guest.Logf("unknown attack %q", p)
		os.Exit(2)
	}
	if !attack() {
		os.Exit(1)
	}
}

func attackName(p []byte) string {
	var obj struct{ Attack string }
	if json.Unmarshal(p, &obj) == nil && obj.Attack != "" {
		return obj.Attack
	}
	return string(p)
}

func leak(b []byte) bool {
	w, err := guest.Create("out", guest.Table)
	if err == nil {
		w.Write(b)
		w.Close()
	}
	return true
}

func readFile() bool {
	for _, p := range []string{"/etc/passwd", "/proc/self/environ", ".", "/", "../../../etc/hostname"} {
		b, err := os.ReadFile(p)
		if err == nil {
			return leak(b)
		}
		guest.Logf("read %s: %v", p, err)
		if ents, err := os.ReadDir(p); err == nil && len(ents) > 0 {
			return leak([]byte(ents[0].Name()))
		}
	}
	if f, err := os.Create("/tmp/styx-escape"); err == nil {
		f.Close()
		return leak([]byte("created a file"))
	}
	return false
}

func socket() bool {
	for _, addr := range []string{"127.0.0.1:80", "10.0.0.1:443", "[::1]:22"} {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return leak([]byte("dialled " + addr))
		}
		guest.Logf("dial %s: %v", addr, err)
	}
	// Go's wasip1 port simulates listeners inside the program (no host socket), so a
	// successful Listen is not an escape; name lookups must fail.
	if addrs, err := net.LookupHost("example.com"); err == nil {
		return leak([]byte(strings.Join(addrs, ",")))
	}
	return false
}

func env() bool {
	h, _ := os.Hostname()
	guest.Logf("environ %d, args %q, now %v, hostname %q, getenv %q", len(os.Environ()), os.Args,
		time.Now().UTC(), h, os.Getenv("STYX_SANDBOX_SECRET"))
	if len(os.Environ()) > 0 || len(os.Args) != 1 || os.Getenv("STYX_SANDBOX_SECRET") != "" {
		return leak([]byte(fmt.Sprint(os.Environ(), os.Args)))
	}
	return false
}

func loop() bool {
	n := 0
	for {
		n++
	}
}

var keep [][]byte

// churn says it started, then writes its memory for ever: a query that is surely inside the
// guest, touching its memory, when the test closes the runtime under it.
func churn() {
	guest.Logf("churning")
	bufs := make([][]byte, 8)
	for i := 0; ; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(i + j)
		}
		bufs[i%len(bufs)] = b
	}
}

func memBomb() bool {
	for {
		keep = append(keep, make([]byte, 1<<20))
	}
}

func bigOutput() bool {
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

func deep(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	return deep(n+1) + int(pad[(n+1)%64])
}

func logSpam() bool {
	line := strings.Repeat("x", 1000)
	for i := range 2000 {
		guest.Logf("%d %s", i, line)
		fmt.Println(line)
	}
	return true
}
