package wasmbuild

import (
	"bytes"
	"context"
	"testing"
)

func TestBuildRowcount(t *testing.T) {
	wasm, err := Build(context.Background(), "examples/programs/rowcount", false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(wasm, []byte("\x00asm")) {
		t.Fatalf("not a wasm module: % x", wasm[:8])
	}
	again, err := Build(context.Background(), "./examples/programs/rowcount", false)
	if err != nil || !bytes.Equal(again, wasm) {
		t.Fatalf("second build differs: %v", err)
	}
}

func TestBuildMissingPackage(t *testing.T) {
	if _, err := Build(context.Background(), "examples/programs/nope", false); err == nil {
		t.Fatal("building a missing package succeeded")
	}
}
