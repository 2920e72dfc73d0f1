package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const killDirEnv = "STYX_AUDIT_KILL_CHILD_DIR"

// kill9Event is a valid event with a distinct time per (worker, n).
func kill9Event(worker, n int) Event {
	ev := testEvent(worker*1000 + n)
	ev.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(worker*1_000_000+n) * time.Microsecond)
	return ev
}

// TestKill9Child is the child process of TestKill9: four goroutines append (single events and
// batches, so group commit is exercised) until the process is killed, printing "acked INDEX
// SHA256(record)" for every entry once its append has returned.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9")
	}
	l, err := Open(dir, testOptions(testKey("cluster")))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				batch := []Event{kill9Event(w, n)}
				if n%5 == 0 {
					for j := 1; j < 10; j++ {
						batch = append(batch, kill9Event(w, n*10+j))
					}
				}
				es, err := l.AppendBatch(ctx, batch)
				if err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				if w == 0 && n%4 == 0 {
					if _, err := l.SignHead(ctx); err != nil {
						fmt.Println("error", err)
						os.Exit(1)
					}
				}
				var b strings.Builder
				for _, e := range es {
					fmt.Fprintf(&b, "acked %d %x\n", e.Index, sha256.Sum256(e.Record))
				}
				os.Stdout.WriteString(b.String())
			}
		})
	}
	wg.Wait()
}

// TestKill9 kills a process appending to the log with SIGKILL, several times, and checks after
// each that every acknowledged record is there intact and the log verifies and extends the head
// seen before.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	var lastHead *SignedHead
	acked := map[int64]string{} // every entry acknowledged in any round
	for round, target := range []int{50, 200, 400} {
		for i, sum := range runAndKill(t, dir, target) {
			acked[i] = sum
		}
		l, err := Open(dir, testOptions(testKey("cluster")))
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		for i, sum := range acked {
			e, err := l.Read(i)
			if err != nil {
				t.Fatalf("round %d: acknowledged record %d: %v", round, i, err)
			}
			if fmt.Sprintf("%x", sha256.Sum256(e.Record)) != sum {
				t.Fatalf("round %d: record %d is not the one acknowledged", round, i)
			}
		}
		lastHead = verifyAll(t, l, lastHead)
		l.Close()
	}
}

// runAndKill starts the child on dir, waits until it acknowledged at least target entries, kills
// it with SIGKILL, and returns every acknowledged index with its record's hash.
func runAndKill(t *testing.T, dir string, target int) map[int64]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$")
	cmd.Env = append(os.Environ(), killDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]string{}
	sc := bufio.NewScanner(out)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %s", line)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "acked" {
			continue
		}
		i, _ := strconv.ParseInt(f[1], 10, 64)
		acked[i] = f[2]
		if !killed && len(acked) >= target {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true // keep reading: lines already printed were acknowledged too
		}
	}
	cmd.Wait()
	if len(acked) < target {
		t.Fatalf("child stopped after %d acknowledged entries", len(acked))
	}
	return acked
}
