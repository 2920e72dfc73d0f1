// Package wasmbuild compiles the example programs of this module to WebAssembly (GOOS=wasip1)
// with the local Go toolchain, for tests and the demo. No prebuilt module is committed: the
// programs are built from source, and the results are cached per process.
package wasmbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// ModulePath is the module whose programs this package builds.
const ModulePath = "github.com/styx-tee/styx"

type result struct {
	once sync.Once
	wasm []byte
	err  error
}

var (
	mu    sync.Mutex
	cache = map[string]*result{}
)

// Build compiles the package pkg (a path relative to the module root, such as
// "examples/programs/svmtrain") for wasip1/wasm. reactor builds with -buildmode=c-shared, for
// programs that serve queries from a warm instance. Results are cached for the process.
func Build(ctx context.Context, pkg string, reactor bool) ([]byte, error) {
	key := fmt.Sprintf("%s|%v", pkg, reactor)
	mu.Lock()
	r := cache[key]
	if r == nil {
		r = &result{}
		cache[key] = r
	}
	mu.Unlock()
	r.once.Do(func() { r.wasm, r.err = build(ctx, pkg, reactor) })
	return r.wasm, r.err
}

func build(ctx context.Context, pkg string, reactor bool) ([]byte, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	dir, err := os.MkdirTemp("", "styx-wasm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "prog.wasm")
	args := []string{"build", "-trimpath", "-o", out}
	if reactor {
		args = append(args, "-buildmode=c-shared")
	}
	cmd := exec.CommandContext(ctx, goTool, append(args, "./"+strings.TrimPrefix(pkg, "./"))...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wasmbuild: go build %s for wasip1: %v\n%s", pkg, err, msg.String())
	}
	return os.ReadFile(out)
}

// ModuleRoot finds the root of this module's source tree from the working directory upwards.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("wasmbuild: not inside the Styx source tree (no go.mod for " + ModulePath + "); run from a checkout")
		}
		dir = parent
	}
}
