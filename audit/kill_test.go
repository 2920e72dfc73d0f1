package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const killDirEnv = "STYX_AUDIT_KILL_CHILD_DIR"

// kill9Event is the deterministic event at index i, so the parent can check every acknowledged
// record byte for byte.
func kill9Event(i int64) Event {
	ev := testEvent(int(i))
	ev.Time = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return ev
}

// TestKill9Child is the child process of TestKill9: it appends until killed, printing the log
// size after every acknowledged append.
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
	for round := 0; ; round++ {
		n := l.Size()
		batch := []Event{kill9Event(n)}
		if round%3 == 0 {
			for j := int64(1); j < 20; j++ {
				batch = append(batch, kill9Event(n+j))
			}
		}
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if round%4 == 0 {
			if _, err := l.SignHead(ctx); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
		}
		fmt.Println("acked", l.Size())
	}
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
	for round, target := range []int64{50, 180, 400} {
		acked := runAndKill(t, dir, target)
		l, err := Open(dir, testOptions(testKey("cluster")))
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		if l.Size() < acked {
			t.Fatalf("round %d: %d records after kill -9, %d were acknowledged", round, l.Size(), acked)
		}
		for i := range l.Size() {
			e, err := l.Read(i)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := MarshalRecord(new(kill9Event(i)))
			if string(e.Record) != string(want) {
				t.Fatalf("round %d: record %d is\n%s\nwant\n%s", round, i, e.Record, want)
			}
		}
		lastHead = verifyAll(t, l, lastHead)
		l.Close()
	}
}

// runAndKill starts the child on dir, waits until it acknowledged at least target records, kills
// it with SIGKILL and returns the last acknowledged size it printed.
func runAndKill(t *testing.T, dir string, target int64) int64 {
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
	var acked int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "acked "); ok {
			acked, _ = strconv.ParseInt(rest, 10, 64)
			if acked >= target {
				break
			}
			continue
		}
		if strings.HasPrefix(line, "error") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %s", line)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Lines printed after the one we stopped at were acknowledged too.
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked, _ = strconv.ParseInt(rest, 10, 64)
		}
	}
	cmd.Wait()
	if acked < target {
		t.Fatalf("child stopped after %d acknowledged records", acked)
	}
	return acked
}
