package main

import (
	"context"
	"os"
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
