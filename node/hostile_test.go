package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/sandbox"
)

// hostilePolicy lets its owner run the hostile programs and rowcount on the Pad, create
// tables, aggregates and logs from it, and read the logs and aggregates back.
const hostilePolicy = `version: 1
owner: ${owner}
rules: |
  @id("owner-runs")
  permit (principal == Styx::Party::"${owner}", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { ["${hostile}", "${oob}", "${count}"].contains(context.program) };
output:
  kinds: [table, aggregate, log]
derive:
  log:
    rules: |
      @id("owner-reads-logs")
      permit (principal == Styx::Party::"${owner}", action == Styx::Action::"release", resource);
  aggregate:
    rules: |
      @id("owner-reads-counts")
      permit (principal == Styx::Party::"${owner}", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

// startNodeSandbox is startNode with the given sandbox limits.
func startNodeSandbox(t *testing.T, dir string, sb sandbox.Config) *testNode {
	t.Helper()
	return serveConfig(t, Config{DataDir: dir, Sandbox: sb, Logger: testLogger(t)})
}

// TestHostileJobs submits the sandbox's escape and exhaustion catalogue to a real node as
// jobs: each ends failed with an error naming its category, seals nothing but the declared
// log, leaks nothing of the node, and the node then runs a normal job.
func TestHostileJobs(t *testing.T) {
	t.Setenv("STYX_SANDBOX_SECRET", "do-not-leak")
	ctx := context.Background()
	// The wall-time limit is short so the infinite loop ends soon, and long enough for a
	// normal job on a loaded machine; the other limits stop the other attacks first.
	n := startNodeSandbox(t, t.TempDir(), sandbox.Config{Timeout: 5 * time.Second, MemoryLimit: 32 << 20, MaxOutputBytes: 1 << 20})
	ownerK := newKey(t)
	owner := n.client(t, ownerK)
	hostile := addProgram(t, owner, "sandbox/testdata/hostile", false)
	oob := addProgram(t, owner, "node/testdata/oobhost", false)
	count := addProgram(t, owner, "examples/programs/rowcount", false)
	pol := expand(hostilePolicy, map[string]string{"owner": ownerK.Identity().ID().String(), "hostile": hostile, "oob": oob, "count": count})
	in := upload(t, owner, sealTo(t, ownerK, n.Cluster.Identity(), pol, "text/csv", csvRows(5)))

	stillServes := func(t *testing.T) {
		t.Helper()
		st := waitJob(t, owner, &api.JobSpec{Program: count, Inputs: map[string]string{"in": in.ID}, Purpose: "research",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
		mustDone(t, st)
		if body := release(t, owner, ownerK, st.Outputs["count"]); !strings.Contains(body, `"total":5`) {
			t.Fatalf("rowcount after a hostile job: %s", body)
		}
	}

	for _, c := range []struct {
		name, program, attack string
		want                  []error // the job error names one of these categories
		logHas                string  // the kept log output says this ("" when the run dies before it logs)
	}{
		{"read a file", hostile, "readfile", []error{sandbox.ErrExit}, "read /etc/passwd"},
		{"open a socket", hostile, "socket", []error{sandbox.ErrExit}, "dial 127.0.0.1:80"},
		{"read the environment", hostile, "env", []error{sandbox.ErrExit}, "environ 0"},
		{"infinite loop", hostile, "loop", []error{sandbox.ErrTimeout}, ""},
		{"memory bomb", hostile, "membomb", []error{sandbox.ErrMemory}, ""},
		{"huge output", hostile, "bigoutput", []error{sandbox.ErrLimit}, ""},
		// Which limit ends a deep recursion first (the memory cap, Go's own stack limit, or
		// the wall time while the stack is copied as it grows) depends on the machine's speed.
		{"deep recursion", hostile, "recursion", []error{sandbox.ErrMemory, sandbox.ErrExit, sandbox.ErrTimeout}, ""},
		{"host call with an out-of-bounds pointer", oob, "", []error{sandbox.ErrGuestFault}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := &api.JobSpec{Program: c.program, Inputs: map[string]string{"in": in.ID}, Purpose: "research",
				Outputs: []api.OutputSpec{{Name: "out", Kind: "table"}, {Name: "log", Kind: "log"}}}
			if c.attack != "" {
				spec.Params = json.RawMessage(`{"attack": "` + c.attack + `"}`)
			}
			before := children(t, owner, in.ID)
			st := waitJob(t, owner, spec)
			t.Logf("job %s: %s", st.State, fmtErr(st.Error))
			if st.State != api.JobFailed || st.Error == nil {
				t.Fatalf("job is %s (%s), want failed", st.State, fmtErr(st.Error))
			}
			if !namesOne(st.Error.Message, c.want) {
				t.Fatalf("job error %q names none of %v", st.Error.Message, c.want)
			}
			if strings.Contains(st.Error.Message, "\n") || strings.Contains(st.Error.Message, "goroutine") {
				t.Fatalf("job error is not one clear line: %q", st.Error.Message)
			}
			if _, ok := st.Outputs["out"]; ok || st.Receipt != "" {
				t.Fatalf("a failed hostile job sealed %v (receipt %q)", st.Outputs, st.Receipt)
			}
			for _, kid := range children(t, owner, in.ID) {
				if contains(before, kid) {
					continue
				}
				if info, err := owner.Pad(ctx, kid); err != nil || info.Kind != "log" {
					t.Fatalf("a hostile job left derived Pad %s (%+v, %v)", kid, info, err)
				}
			}
			if c.logHas != "" {
				if st.Outputs["log"] == "" {
					t.Fatal("the failed job's declared log was not kept")
				}
				log := release(t, owner, ownerK, st.Outputs["log"])
				if !strings.Contains(log, c.logHas) {
					t.Fatalf("log %q lacks %q", log, c.logHas)
				}
				if strings.Contains(log, "do-not-leak") {
					t.Fatal("the node's environment reached the program")
				}
				if hn, _ := os.Hostname(); len(hn) > 4 && strings.Contains(log, hn) {
					t.Fatal("the node's hostname reached the program")
				}
			}
			stillServes(t)
		})
	}

	t.Run("malformed module", func(t *testing.T) {
		for _, wasm := range [][]byte{[]byte("\x00asm\x01\x00\x00\x00\x01\xff"), []byte("#!/bin/sh\nrm -rf /\n"), nil} {
			_, err := owner.AddProgram(ctx, bytes.NewReader(wasm))
			if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), sandbox.ErrBadModule.Error()) {
				t.Fatalf("adding %q: %v, want a bad request naming %q", wasm, err, sandbox.ErrBadModule)
			}
		}
		stillServes(t)
	})
}

// namesOne reports whether msg contains the text of one of the sandbox's error categories.
func namesOne(msg string, want []error) bool {
	for _, w := range want {
		if strings.Contains(msg, w.Error()) {
			return true
		}
	}
	return false
}
