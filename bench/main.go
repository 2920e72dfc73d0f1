// Command bench measures Styx on this machine and prints the figures docs/performance.md records.
//
//	go run ./bench all [-quick] [-json]         every section below, then one summary table
//	go run ./bench pad [-size 1GiB] [-runs 3]   Pad seal/open against raw AES-256-GCM and age
//	go run ./bench pad-rss [-size 1GiB]         peak memory of sealing and opening a large Pad
//	go run ./bench admission                    job admission overhead for 3 inputs vs plaintext
//	go run ./bench train                        SVM training in Styx vs plain Go
//	go run ./bench query                        query throughput under policy vs a bare server
//	go run ./bench scale                        cost per row at 1×, 10×, 100× the WDBC rows
//
// Each section lives in its own file and adds itself to sections with register.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// A section is one benchmark subcommand.
type section struct {
	name    string
	summary string
	run     func(fs *flag.FlagSet, args []string) error
}

var sections = map[string]*section{}

func register(s *section) { sections[s.name] = s }

func main() {
	if len(os.Args) < 2 || sections[os.Args[1]] == nil {
		usage()
		os.Exit(2)
	}
	s := sections[os.Args[1]]
	fs := flag.NewFlagSet("bench "+s.name, flag.ExitOnError)
	if err := s.run(fs, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", s.name, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go run ./bench SECTION [flags]\n\nsections:")
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, sections[n].summary)
	}
}

// byteSize is a flag holding a size such as 1GiB, 64MiB, 4096.
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("bad size %q", s)
	}
	*b = byteSize(n * mult)
	return nil
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dB", n)
}
