package main

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript scenarios run "styx" as a real command of this binary.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"styx": func() {
			e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
			os.Exit(run(context.Background(), e, os.Args[1:]))
		},
	})
}

// TestScripts runs the CLI scenarios in testdata/*.txt as a user would type them.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata"})
}

func TestPermute(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("o", "", "")
	fs.Bool("json", false, "")
	for _, tc := range []struct{ in, want string }{
		{"PAD -o out", "-o out -- PAD"},
		{"-o out PAD", "-o out -- PAD"},
		{"PAD --json -o=x", "--json -o=x -- PAD"},
		{"a -- -o b", "-- a -- -o b"},
		{"-- -o", "-- -o"},
		{"-", "-- -"},
		{"PAD -unknown", "-unknown -- PAD"},
		{"", ""},
	} {
		got := strings.Join(permute(fs, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("permute(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
