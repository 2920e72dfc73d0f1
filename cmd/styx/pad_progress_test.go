//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY returns both ends of a new pseudo-terminal, so that the CLI sees a real terminal.
func openPTY(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals on this machine: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestSealAndOpenShowProgressOnATerminal: sealing and opening more than a few MiB draw a progress
// bar on stderr when it is a terminal, and clear it at the end; with stderr not a terminal they
// print only their one summary line.
func TestSealAndOpenShowProgressOnATerminal(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "big.bin")
	if err := os.WriteFile(in, bytes.Repeat([]byte("0123456789abcdef"), (progressMin+(1<<20))/16), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	key := filepath.Join(dir, "owner.key")
	runOK(t, nil, "keygen", "-o", key)
	id := strings.TrimSpace(runOK(t, nil, "identity", key))
	pol := "version: 1\nowner: " + id + "\nrules: |\n  permit (principal, action, resource) when { context.purpose == \"research\" };\nlifecycle:\n  expires: 2099-01-01T00:00:00Z\n"
	if err := os.WriteFile(policy, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	padFile, out := filepath.Join(dir, "big.pad"), filepath.Join(dir, "big.out")

	for _, args := range [][]string{
		{"pad", "seal", "--key", key, "--policy", policy, "-o", padFile, in},
		{"pad", "open", "--key", key, "-o", out, padFile},
	} {
		master, tty := openPTY(t)
		drawn := make(chan string)
		go func() {
			b, _ := io.ReadAll(master) // ends with EIO once the terminal side is closed
			drawn <- string(b)
		}()
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: tty, getenv: func(string) string { return "" }}
		code := run(context.Background(), e, args)
		tty.Close()
		got := <-drawn
		if code != 0 {
			t.Fatalf("%v: exit %d: %q", args, code, got)
		}
		verb := map[string]string{"seal": "sealing", "open": "opening"}[args[1]]
		if !strings.Contains(got, "[==============================] 100%") || !strings.Contains(got, "\r\x1b[K") ||
			!strings.Contains(strings.ToLower(got), verb) {
			t.Fatalf("%v: no progress bar that reaches 100%% and is cleared on the terminal:\n%q", args, got)
		}
	}
	if a, b := fileSum(t, in), fileSum(t, out); a != b {
		t.Fatal("the opened file differs from the sealed one")
	}

	// Not a terminal: just the summary line.
	var stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := run(context.Background(), e, []string{"pad", "open", "--key", key, "-o", out + "2", padFile}); code != 0 {
		t.Fatalf("open: exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "%") || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("progress drawn when stderr is not a terminal: %q", stderr.String())
	}
}

func runOK(t *testing.T, stdin io.Reader, args ...string) string {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), &env{stdin: stdin, stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}, args); code != 0 {
		t.Fatalf("styx %v: exit %d: %s", args, code, stderr.String())
	}
	return stdout.String()
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
