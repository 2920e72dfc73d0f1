package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/snp"
	"github.com/styx-tee/styx/tee/snp/snptest"
	"github.com/styx-tee/styx/tee/tdx"
	"github.com/styx-tee/styx/tee/tdx/tdxtest"
)

// The hardware backends without hardware: faked configfs-tsm trees whose quotes and reports are
// signed by fake manufacturer chains (tee/tdx/tdxtest, tee/snp/snptest), a fake SEV guest device
// for SNP's derived sealing key, and reference values that trust the fake roots.

var hwEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func hwNow() time.Time { return hwEpoch.AddDate(0, 6, 0) }

// hardware is one fake platform: how a node reaches it, and how its evidence verifies.
type hardware struct {
	tee      string
	platform cluster.Platform
	verifier tee.Verifier
	ref      *tee.ReferenceValues
}

func fakeTDX(t *testing.T) hardware {
	s, err := tdxtest.NewSigner(hwEpoch)
	if err != nil {
		t.Fatal(err)
	}
	s.MRTD[0] = 0x7d
	return hardware{
		tee:      "tdx",
		platform: cluster.Platform{TSM: s.Configfs()},
		verifier: tee.Verifiers{tee.TDX: tdx.Verifier{Roots: s.Roots(), Now: hwNow}},
		ref: &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
			tee.TDX: {Measurements: []tee.Measurement{{"mrtd": "7d" + strings.Repeat("00", 47)}}},
		}},
	}
}

// fakeSNP is an SNP guest whose firmware derives sealKey for the node's key request.
func fakeSNP(t *testing.T, sealKey []byte) hardware {
	s, err := snptest.NewSigner(hwEpoch)
	if err != nil {
		t.Fatal(err)
	}
	s.Measurement[0] = 0x5e
	dev, err := snptest.DerivedKeyDevice(snp.DerivedKeyRequest(0), sealKey)
	if err != nil {
		t.Fatal(err)
	}
	return hardware{
		tee:      "snp",
		platform: cluster.Platform{TSM: s.Configfs(), SEVGuest: dev},
		verifier: tee.Verifiers{tee.SNP: snp.Verifier{Roots: s.Roots(), Now: hwNow}},
		ref: &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
			tee.SNP: {Measurements: []tee.Measurement{{"measurement": "5e" + strings.Repeat("00", 47)}}},
		}},
	}
}

func (hw hardware) config(t *testing.T, dir string) Config {
	return Config{DataDir: dir, TEE: hw.tee, Platform: hw.platform, Verifier: hw.verifier, Reference: hw.ref,
		Sandbox: sandboxForTests(), Logger: testLogger(t)}
}

// attestAndUpload attests the node with the fake platform's reference values and roots, checks
// what it attested, and uploads a Pad an owner sealed to the attested cluster identity.
func attestAndUpload(t *testing.T, hw hardware, tn *testNode, owner *party.Key) (*cluster.Attested, *api.PadInfo) {
	t.Helper()
	ctx := context.Background()
	att, err := (&cluster.Client{Reference: hw.ref, Verifier: hw.verifier}).Attest(ctx, tn.URL())
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	if !att.Cluster.Equal(tn.Cluster.Identity()) || att.Claims.Type != tee.Type(hw.tee) || att.Claims.Simulated || tn.Claims.Simulated {
		t.Fatalf("attested %s %+v", att.Cluster.ID(), att.Claims)
	}
	// The manufacturers' real roots do not know the fake chains.
	if _, err := (&cluster.Client{Reference: hw.ref}).Attest(ctx, tn.URL()); !errors.Is(err, tee.ErrSignature) {
		t.Fatalf("attest with the real roots: %v", err)
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: tn.URL(), Key: owner, TLS: att.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	policy := "version: 1\nowner: " + owner.Identity().ID().String() + "\nrules: |\n  permit (principal, action, resource);\n"
	sealed := sealTo(t, owner, att.Cluster, policy, "text/csv", []byte("a\n1\n"))
	info := upload(t, c, sealed)
	// The node's cluster key opens what the owner sealed to the attested identity.
	_, r, err := pad.Open(bytes.NewReader(sealed), tn.Cluster.Key())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(r); string(b) != "a\n1\n" {
		t.Fatalf("payload %q", b)
	}
	return att, info
}

// padListed checks the node's state (store encrypted under the cluster key) still holds id.
func padListed(t *testing.T, tn *testNode, owner *party.Key, att *cluster.Attested, id string) {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{BaseURL: tn.URL(), Key: owner, TLS: att.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pad(context.Background(), id); err != nil {
		t.Fatalf("pad %s after restart: %v", id, err)
	}
}

// TestHardwareTDX runs a tdx node on the fake TDX platform. TDX has no sealing key: the node
// seals under a per-process key and escrows the cluster key to the owners' recovery identity;
// after a restart it cannot open its sealed files and comes back through the escrow holder.
func TestHardwareTDX(t *testing.T) {
	hw := fakeTDX(t)
	dir := t.TempDir()
	holder, owner := newKey(t), newKey(t)

	cfg := hw.config(t, dir)
	if _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--escrow-to") {
		t.Fatalf("new tdx cluster without an escrow recipient: %v", err)
	}
	cfg.EscrowTo = holder.Identity()
	tn := serveConfig(t, cfg)
	first := tn.Cluster.Identity()
	att, info := attestAndUpload(t, hw, tn, owner)
	e, err := cluster.LoadEscrow(filepath.Join(dir, "cluster", cluster.EscrowFile))
	if err != nil || e.Cluster != first.String() || e.Recovery != holder.Identity().String() {
		t.Fatalf("escrow: %v", err)
	}
	tn.stop()

	// A restarted process has a new sealing key: without the holder the node cannot open.
	restart := hw.config(t, dir)
	if _, err := Open(context.Background(), restart); !errors.Is(err, ErrRecoveryNeeded) {
		t.Fatalf("restart without recovery: %v", err)
	}
	// Another holder cannot recover it.
	restart.Recovery = &cluster.LocalHolder{Key: newKey(t), Reference: hw.ref, Verifier: hw.verifier}
	if _, err := Open(context.Background(), restart); !errors.Is(err, cluster.ErrKeyMismatch) {
		t.Fatalf("restart with another holder: %v", err)
	}
	restart.Recovery = &cluster.LocalHolder{Key: holder, Reference: hw.ref, Verifier: hw.verifier}
	tn = serveConfig(t, restart)
	if !tn.Cluster.Identity().Equal(first) {
		t.Fatal("recovered node holds another cluster key")
	}
	// The TLS key is new (it was sealed under the old process key): the old pin is refused,
	// a new attestation pins the new key, and the state sealed under the cluster key is there.
	old, _ := api.NewClient(api.ClientConfig{BaseURL: tn.URL(), Key: owner, TLS: att.TLSConfig()})
	var pe *cluster.PinError
	if _, err := old.Pad(context.Background(), info.ID); !errors.As(err, &pe) {
		t.Fatalf("old pin after recovery: %v", err)
	}
	att2, err := (&cluster.Client{Reference: hw.ref, Verifier: hw.verifier}).Attest(context.Background(), tn.URL())
	if err != nil || !att2.Cluster.Equal(first) {
		t.Fatalf("attest after recovery: %v", err)
	}
	padListed(t, tn, owner, att2, info.ID)
}

// TestHardwareSNP runs an snp node on the fake SNP platform: its keys are sealed with the key
// the firmware derives for this guest on this chip, so a restart opens them and another guest
// (another derived key) cannot.
func TestHardwareSNP(t *testing.T) {
	sealKey := bytes.Repeat([]byte{0x42}, 32)
	hw := fakeSNP(t, sealKey)
	dir := t.TempDir()
	owner := newKey(t)
	tn := serveConfig(t, hw.config(t, dir))
	first := tn.Cluster.Identity()
	_, info := attestAndUpload(t, hw, tn, owner)
	tn.stop()

	// The sealed files open under the derived key, and under no other.
	ck := filepath.Join(dir, "cluster")
	for _, tc := range []struct {
		key  []byte
		want error
	}{{sealKey, nil}, {bytes.Repeat([]byte{0x43}, 32), tee.ErrUnseal}} {
		s, _ := tee.NewKeySealer(tc.key)
		_, err := cluster.Open(cluster.Config{Dir: ck, Attester: hw.platform.Attester(tee.SNP), Sealer: s})
		if !errors.Is(err, tc.want) {
			t.Fatalf("open with key %x…: got %v, want %v", tc.key[:1], err, tc.want)
		}
	}

	tn = serveConfig(t, hw.config(t, dir))
	if !tn.Cluster.Identity().Equal(first) {
		t.Fatal("restarted node holds another cluster key")
	}
	att, err := (&cluster.Client{Reference: hw.ref, Verifier: hw.verifier}).Attest(context.Background(), tn.URL())
	if err != nil {
		t.Fatal(err)
	}
	padListed(t, tn, owner, att, info.ID)
	tn.stop()

	// Another guest image or chip derives another key: the node refuses to start.
	other := fakeSNP(t, bytes.Repeat([]byte{0x43}, 32))
	if _, err := Open(context.Background(), other.config(t, dir)); !errors.Is(err, tee.ErrUnseal) {
		t.Fatalf("another derived key: %v", err)
	}
}

// TestDefaultTSMRoot: with no --tsm-root, a tdx node looks for reports where the kernel makes
// them, /sys/kernel/config/tsm/report, and says so when that is missing (as on this machine).
// Nothing is created before the TEE has attested once.
func TestDefaultTSMRoot(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/config/tsm"); err == nil {
		t.Skip("this machine has configfs-tsm")
	}
	dir := t.TempDir()
	ref := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.TDX: {Measurements: []tee.Measurement{{"mrtd": strings.Repeat("00", 48)}}},
	}}
	_, err := Open(context.Background(), Config{DataDir: dir, TEE: "tdx", Reference: ref, EscrowTo: newKey(t).Identity()})
	if err == nil {
		t.Fatal("tdx node opened without configfs-tsm")
	}
	if !strings.Contains(err.Error(), "/sys/kernel/config/tsm/report does not exist") {
		t.Fatalf("error does not name the kernel's report directory: %v", err)
	}
	for _, name := range []string{cluster.ClusterKeyFile, cluster.EscrowFile} {
		if _, err := os.Stat(filepath.Join(dir, "cluster", name)); err == nil {
			t.Errorf("%s created by a node whose TEE does not attest", name)
		}
	}
}

// TestDialPinned: cluster.Client.Dial attests a real node and returns a client pinned to the
// attested TLS key. When an impostor takes the node's address, the pinned client refuses it, and
// dialling the impostor fails even though it relays the real node's attestation.
func TestDialPinned(t *testing.T) {
	tn := startNode(t, t.TempDir())
	key := newKey(t)
	// The impostor has its own TLS key and relays GET /v1/attestation to the real node.
	relay := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	impostor := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := relay.Get(tn.URL() + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(impostor.Close)
	p := newSwitchProxy(t, strings.TrimPrefix(tn.URL(), "https://"))
	url := "https://" + p.ln.Addr().String()

	cc := &cluster.Client{Reference: tn.SelfReference()}
	c, att, err := cc.Dial(context.Background(), url, key)
	if err != nil {
		t.Fatal(err)
	}
	if !att.Cluster.Equal(tn.Cluster.Identity()) {
		t.Fatal("dialled another cluster")
	}
	if _, err := c.ListPads(context.Background(), nil); err != nil {
		t.Fatalf("pinned client against the real node: %v", err)
	}

	p.switchTo(strings.TrimPrefix(impostor.URL, "https://"))
	_, err = c.ListPads(context.Background(), nil)
	var pe *cluster.PinError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "server TLS key does not match the attested key") {
		t.Fatalf("pinned client against the impostor: %v", err)
	}
	if c, _, err := cc.Dial(context.Background(), url, key); c != nil || !errors.As(err, &pe) {
		t.Fatalf("dial the impostor relaying the node's attestation: %v", err)
	}
}

// switchProxy forwards TCP connections to a target that the test can switch: a node replaced
// under the same address.
type switchProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	target string
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.switchTo("") })
	return p
}

func (p *switchProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

// switchTo sends new connections to target and closes the open ones.
func (p *switchProxy) switchTo(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
