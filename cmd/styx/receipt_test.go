package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/node"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

// receiptFixture is a simulated cluster node with its own transparency log signed by its
// cluster key, as a real node has, and its attestation bundle saved to a file.
type receiptFixture struct {
	dir    string
	bundle string
	log    *audit.Log
	meas   string
}

func newReceiptFixture(t *testing.T, m byte) *receiptFixture {
	t.Helper()
	meas := [32]byte{m}
	n := simNode(t, meas)
	dir := t.TempDir()
	b, err := n.Bundle(cluster.NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "cluster.bundle")
	if err := os.WriteFile(bundle, b.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(filepath.Join(dir, "log"), audit.Options{Origin: "styx.test", Signer: rawSigner{n.Key()}, PublicKey: n.Key().Identity().SigningKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	return &receiptFixture{dir: dir, bundle: bundle, log: alog, meas: hex.EncodeToString(meas[:])}
}

// issue logs a job receipt claiming measurement meas and writes it to a file.
func (f *receiptFixture) issue(t *testing.T, name, meas string) string {
	t.Helper()
	c := audit.Claims{Kind: audit.ReceiptJob, Job: "job-" + name, Program: strings.Repeat("ab", 32),
		Inputs:  []audit.PadRef{{Pad: "pad-in-" + name, Policy: strings.Repeat("01", 32)}},
		Outputs: []audit.PadRef{{Pad: "pad-out-" + name, Policy: strings.Repeat("02", 32)}},
		TEE:     audit.TEEClaims{Type: "sim", Measurement: meas, Simulated: true}}
	r, err := f.log.IssueReceipt(context.Background(), c, "styxid1test", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.dir, name+".receipt")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runStyx(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = run(context.Background(), e, args)
	return code, out.String(), errb.String()
}

func TestReceiptVerify(t *testing.T) {
	f := newReceiptFixture(t, 0xaa)
	good := f.issue(t, "a", f.meas)
	// More events after the receipt: its head is older than the log's, and still proves it.
	f.issue(t, "b", f.meas)

	code, out, errs := runStyx(t, "receipt", "verify", "--cluster", f.bundle, "--allow-simulated", good)
	if code != 0 || !strings.Contains(out, "job receipt for job job-a") || !strings.Contains(out, "pad-out-a") ||
		!strings.Contains(errs, "receipt verified offline") || !strings.Contains(errs, "SIMULATED") {
		t.Fatalf("good receipt: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runStyx(t, "receipt", "verify", "--cluster", f.bundle, "--allow-simulated", "--json", good); code != 0 || !strings.Contains(out, `"job": "job-a"`) {
		t.Fatalf("--json: exit %d: %s", code, out)
	}

	refuse := func(name, want string, args ...string) {
		t.Helper()
		code, out, errs := runStyx(t, append([]string{"receipt", "verify"}, args...)...)
		if code == 0 || out != "" || !strings.Contains(errs, want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want a refusal saying %q", name, code, out, errs, want)
		}
	}
	refuse("no reference values", "no reference values", "--cluster", f.bundle, good)
	strict := filepath.Join(f.dir, "strict.json")
	os.WriteFile(strict, []byte(`{"tee": {"tdx": {"measurements": [{"mrtd": "`+strings.Repeat("ab", 48)+`"}]}}}`), 0o644)
	refuse("simulated cluster against hardware reference values", "simulated", "--cluster", f.bundle, "--reference", strict, good)
	refuse("usage", "usage", "--allow-simulated", good)

	raw, _ := os.ReadFile(good)
	tamper := func(name, old, new string) string {
		t.Helper()
		if !bytes.Contains(raw, []byte(old)) {
			t.Fatalf("%s: receipt has no %q", name, old)
		}
		p := filepath.Join(f.dir, name+".receipt")
		os.WriteFile(p, bytes.Replace(raw, []byte(old), []byte(new), 1), 0o644)
		return p
	}
	refuse("tampered output Pad", "does NOT verify", "--cluster", f.bundle, "--allow-simulated", tamper("outpad", "pad-out-a", "pad-out-z"))
	refuse("tampered program", "does NOT verify", "--cluster", f.bundle, "--allow-simulated", tamper("program", `"program":"abab`, `"program":"cdab`))
	refuse("tampered index", "does NOT verify", "--cluster", f.bundle, "--allow-simulated", tamper("index", `"index":0`, `"index":1`))
	refuse("tampered simulation flag", "must be marked simulated", "--cluster", f.bundle, "--allow-simulated", tamper("sim", `"simulated":true`, `"simulated":false`))
	refuse("not canonical", "canonical", "--cluster", f.bundle, "--allow-simulated", tamper("space", `{"v":1`, `{ "v":1`))

	// A receipt from another cluster does not verify with this cluster's bundle.
	other := newReceiptFixture(t, 0xaa)
	refuse("another cluster's receipt", "does NOT verify", "--cluster", f.bundle, "--allow-simulated", other.issue(t, "c", other.meas))
	// A receipt whose claims name other code than the attested node runs.
	refuse("other measurement", "the attestation shows", "--cluster", f.bundle, "--allow-simulated", f.issue(t, "d", strings.Repeat("bb", 32)))
}

// TestReceiptVerifyRealJob verifies the receipt of a job run by a real node, with the node's
// own attestation bundle and with its reference values.
func TestReceiptVerifyRealJob(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node")
	}
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	n, err := node.Open(ctx, node.Config{DataDir: filepath.Join(dir, "node")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { n.ServeListener(ctx, ln); close(served) }()
	t.Cleanup(func() { cancel(); <-served; n.Close() })

	b, err := n.Cluster.Bundle(cluster.NewNonce())
	if err != nil {
		t.Fatal(err)
	}
	bundle, ref := filepath.Join(dir, "cluster.bundle"), filepath.Join(dir, "reference.json")
	os.WriteFile(bundle, b.Marshal(), 0o644)
	os.WriteFile(ref, n.SelfReference().Marshal(), 0o644)
	att, err := (&cluster.Client{Reference: n.SelfReference()}).Attest(ctx, n.URL())
	if err != nil {
		t.Fatal(err)
	}
	key, err := party.Generate()
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: n.URL(), Key: key, TLS: att.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := wasmbuild.Build(ctx, "examples/programs/rowcount", false)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := c.AddProgram(ctx, bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	me := key.Identity().ID().String()
	policy := `version: 1
owner: ` + me + `
rules: |
  permit (principal == Styx::Party::"` + me + `", action in [Styx::Action::"use", Styx::Action::"derive"], resource);
output:
  kinds: [aggregate]
tee: {allow_simulated: true}
`
	data := []byte("a,b\n1,2\n3,4\n")
	var sealed bytes.Buffer
	if _, err := pad.Seal(&sealed, bytes.NewReader(data), pad.SealOptions{Signer: key, Recipients: []*party.Identity{key.Identity(), n.Cluster.Identity()},
		Policy: []byte(policy), PolicyType: "application/styx-policy+yaml", ContentType: "text/csv", Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	info, err := c.UploadPad(ctx, bytes.NewReader(sealed.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.SubmitJob(ctx, &api.JobSpec{Program: prog.SHA256, Inputs: map[string]string{"in": info.ID}, Purpose: "count",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}, Wait: true})
	if err == nil && !st.State.Final() {
		st, err = c.WaitJob(ctx, st.ID)
	}
	if err != nil || st.State != api.JobDone {
		t.Fatalf("job: %+v %v", st, err)
	}
	raw, err := c.Receipt(ctx, st.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "job.receipt")
	os.WriteFile(file, raw, 0o644)

	for _, args := range [][]string{{"--allow-simulated"}, {"--reference", ref}} {
		code, out, errs := runStyx(t, append(append([]string{"receipt", "verify", "--cluster", bundle}, args...), file)...)
		if code != 0 || !strings.Contains(out, st.Outputs["count"]) || !strings.Contains(out, info.ID) || !strings.Contains(out, prog.SHA256) {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errs)
		}
	}
	tampered := filepath.Join(dir, "tampered.receipt")
	other := info.ID[:len(info.ID)-1] + "a"
	if other == info.ID {
		other = info.ID[:len(info.ID)-1] + "b"
	}
	os.WriteFile(tampered, bytes.Replace(raw, []byte(info.ID), []byte(other), 1), 0o644)
	if code, _, errs := runStyx(t, "receipt", "verify", "--cluster", bundle, "--reference", ref, tampered); code == 0 || !strings.Contains(errs, "does NOT verify") {
		t.Fatalf("a receipt naming another input: exit %d: %s", code, errs)
	}
}
