package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/tee/sim"
)

// simNode starts a simulated node serving its attestation over TLS with tlsFrom's key (its own
// key normally; another node's to play a man in the middle relaying a genuine bundle).
func simNode(t *testing.T, measurement [32]byte) *cluster.Node {
	t.Helper()
	dir := t.TempDir()
	s, err := sim.NewSealer(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := cluster.Init(cluster.Config{Dir: filepath.Join(dir, "node"), Attester: sim.New(measurement, false), Sealer: s})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func serveAttestation(t *testing.T, n, tlsFrom *cluster.Node) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(cluster.AttestationPath, n.Handler())
	srv := httptest.NewUnstartedServer(mux)
	cfg, err := tlsFrom.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAttestServerScripts runs testdata/attestserver/*.txt against in-process TLS servers
// built from the cluster package's handler: $SERVER is a simulated node, $MITM relays that
// node's attestation over another key.
func TestAttestServerScripts(t *testing.T) {
	m := [32]byte{0xc0, 0xde}
	node := simNode(t, m)
	server := serveAttestation(t, node, node)
	mitm := serveAttestation(t, node, simNode(t, m))
	dev := `{"allow_simulated": true, "tee": {"sim": {"measurements": [{"measurement": "c0de` + strings.Repeat("00", 30) + `"}]}}}`
	testscript.Run(t, testscript.Params{
		Dir: "testdata/attestserver",
		Setup: func(env *testscript.Env) error {
			env.Setenv("SERVER", server)
			env.Setenv("MITM", mitm)
			env.Setenv("CLUSTER", node.Identity().String())
			return os.WriteFile(filepath.Join(env.WorkDir, "dev.json"), []byte(dev), 0o644)
		},
	})
}
