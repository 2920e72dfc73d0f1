package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/styx-tee/styx/internal/wasmbuild"
)

// TestDemoScripts runs testdata/demo/*.txt: `styx demo` as a user types it, whose exit status
// says whether every outcome of the story was the expected one. $ROOT is the module root (the
// demo builds its programs from source there).
func TestDemoScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole scenario twice")
	}
	root, err := wasmbuild.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/demo",
		Setup: func(env *testscript.Env) error {
			env.Setenv("ROOT", root)
			return nil
		},
	})
}
