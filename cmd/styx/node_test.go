package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/node"
	"github.com/styx-tee/styx/party"
)

// TestNodeScripts runs testdata/node/*.txt against a real node (the engine, embedded store,
// sandbox and transparency log behind the attested API), each script with a fresh one: the CLI
// as a user types it, end to end.
func TestNodeScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node per script")
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/node",
		Setup: func(env *testscript.Env) error {
			ctx, cancel := context.WithCancel(context.Background())
			n, err := node.Open(ctx, node.Config{DataDir: filepath.Join(env.WorkDir, ".node")})
			if err != nil {
				cancel()
				return err
			}
			ln, err := n.Listen("127.0.0.1:0")
			if err != nil {
				cancel()
				n.Close()
				return err
			}
			done := make(chan error, 1)
			go func() { done <- n.ServeListener(ctx, ln) }()
			env.Defer(func() { cancel(); <-done; n.Close() })
			b, err := n.Cluster.Bundle(cluster.NewNonce())
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(env.WorkDir, "cluster.bundle"), b.Marshal(), 0o644); err != nil {
				return err
			}
			env.Setenv("STYX_SERVER", n.URL())
			env.Setenv("STYX_PINS", filepath.Join(env.WorkDir, "pins.json"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			return os.WriteFile(filepath.Join(env.WorkDir, "reference.json"), n.SelfReference().Marshal(), 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"envfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: envfile VAR FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
			// envjson VAR FILE KEY… sets $VAR to the string at KEY… in the JSON object in FILE.
			"envjson": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 3 {
					ts.Fatalf("usage: envjson VAR FILE KEY...")
				}
				var v any
				ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[1])), &v))
				for _, k := range args[2:] {
					m, ok := v.(map[string]any)
					if !ok {
						ts.Fatalf("%s: no object at %s", args[1], k)
					}
					v = m[k]
				}
				s, ok := v.(string)
				if !ok {
					ts.Fatalf("%s: %v is not a string", args[1], args[2:])
				}
				ts.Setenv(args[0], s)
			},
			// policyfor KEY OUT writes a research policy owned by KEY's party.
			"policyfor": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: policyfor KEY OUT")
				}
				k, err := party.LoadKeyFile(ts.MkAbs(args[0]))
				ts.Check(err)
				doc := fmt.Sprintf(`version: 1
owner: %s
rules: |
  @id("research")
  permit (principal, action, resource) when { context.purpose == "research" };
  @id("owner-reads-results")
  permit (principal, action == Styx::Action::"release", resource) when { principal == Styx::Party::"%[1]s" };
lifecycle: {expires: 2030-01-01T00:00:00Z}
tee: {allow_simulated: true}
`, k.Identity().ID())
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(doc), 0o644))
			},
			// wasm PKG OUT builds an example program for the sandbox.
			"wasm": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: wasm PKG OUT")
				}
				b, err := wasmbuild.Build(context.Background(), args[0], false)
				ts.Check(err)
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
			},
		},
	})
}
