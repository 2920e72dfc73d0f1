package demo

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/examples/hospitals"
	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/node"
	"github.com/styx-tee/styx/party"
)

// shares are the data of the scenario: four stratified training shares and a held-out test set.
type shares struct {
	train *ml.Dataset
	parts map[string]*ml.Dataset // hospital name → share
	test  *ml.Dataset
}

func loadShares() (*shares, error) {
	all, err := ml.ReadWDBC(bytes.NewReader(hospitals.WDBC))
	if err != nil {
		return nil, err
	}
	train, test := ml.Split(all, 0.2, 2026)
	parts := ml.Shares(train, 4, 7)
	return &shares{train: train, test: test, parts: map[string]*ml.Dataset{
		"hospital-a": parts[0], "hospital-b": parts[1], "hospital-c": parts[2], "hospital-d": parts[3],
	}}, nil
}

// start opens a node in dir, serves it on a loopback port, attests it, and builds and adds
// the approved programs.
func (s *story) start(ctx context.Context, dir string) error {
	var err error
	if s.data, err = loadShares(); err != nil {
		return err
	}
	s.node, err = node.Open(ctx, node.Config{DataDir: dir})
	if err != nil {
		return err
	}
	ln, err := s.node.Listen("127.0.0.1:0")
	if err != nil {
		s.node.Close()
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.node.ServeListener(sctx, ln) }()
	s.rep.Simulated = s.node.Claims.Simulated
	s.rep.Cluster = s.node.Cluster.Identity().ID().String()
	fmt.Fprintf(s.out, "Styx demo: the hospitals scenario on one in-process node (embedded store, sandbox, attested API)\n")
	if s.node.Claims.Simulated {
		fmt.Fprintf(s.out, "TEE: SIMULATED — no hardware protection; every output below was produced on a simulated TEE\n")
	}
	fmt.Fprintf(s.out, "cluster %s at %s\n", s.rep.Cluster, s.node.URL())
	s.parties = map[string]*actor{}
	for _, name := range []string{"hospital-a", "hospital-b", "hospital-c", "hospital-d", "clinic", "outsider"} {
		if err := s.addActor(ctx, name); err != nil {
			return err
		}
	}
	t0 := time.Now()
	stop := s.watch("building the approved programs from source (GOOS=wasip1)", nil)
	err = s.addPrograms(ctx)
	stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "built and added the approved programs in %.1f s\n  svmtrain   %s\n  svmpredict %s\n  colstats   %s\n",
		time.Since(t0).Seconds(), s.trainSHA, s.predictSHA, s.statsSHA)
	return nil
}

func (s *story) addPrograms(ctx context.Context) error {
	a := s.parties["hospital-a"].client
	var err error
	if s.trainSHA, err = addProgram(ctx, a, "examples/programs/svmtrain", false); err != nil {
		return err
	}
	if s.predictSHA, err = addProgram(ctx, a, "examples/programs/svmpredict", true); err != nil {
		return err
	}
	s.statsSHA, err = addProgram(ctx, a, "examples/programs/colstats", false)
	return err
}

func (s *story) stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if s.node != nil {
		s.node.Close()
	}
}

// addActor creates a party and a client that attested the node and pinned its TLS key. The
// party keeps the bundle and the reference values it verified it with (the node's own, as
// `styx serve` writes them to reference.json: they accept the simulated TEE), to verify its
// receipts offline later.
func (s *story) addActor(ctx context.Context, name string) error {
	k, err := party.Generate()
	if err != nil {
		return err
	}
	ref := s.node.SelfReference()
	cc := &cluster.Client{Reference: ref}
	att, err := cc.Attest(ctx, s.node.URL())
	if err != nil {
		return fmt.Errorf("%s: attest: %w", name, err)
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: s.node.URL(), Key: k, TLS: att.TLSConfig()})
	if err != nil {
		return err
	}
	s.parties[name] = &actor{name: name, key: k, client: c, cluster: att.Cluster, bundle: att.Bundle.Marshal(), ref: ref}
	return nil
}

func addProgram(ctx context.Context, c *api.Client, pkg string, reactor bool) (string, error) {
	wasm, err := wasmbuild.Build(ctx, pkg, reactor)
	if err != nil {
		return "", err
	}
	info, err := c.AddProgram(ctx, bytes.NewReader(wasm))
	if err != nil {
		return "", err
	}
	return info.SHA256, nil
}

func (s *story) id(name string) string { return s.parties[name].key.Identity().ID().String() }

// policyFor renders a hospital's policy at a version, with the consortium's members.
func (s *story) policyFor(name string, version int, members ...string) ([]byte, error) {
	var ids []string
	for _, m := range members {
		ids = append(ids, s.id(m))
	}
	now := time.Now().UTC()
	return hospitals.PolicyFrom(s.opts.Policies, name, map[string]string{
		"version": fmt.Sprint(version), "a": s.id("hospital-a"), "b": s.id("hospital-b"), "c": s.id("hospital-c"),
		"d": s.id("hospital-d"), "clinic": s.id("clinic"), "consortium": strings.Join(ids, ", "),
		"train": s.trainSHA, "predict": s.predictSHA, "stats": s.statsSHA,
		"expires_a": now.AddDate(1, 0, 0).Format(time.RFC3339), "expires_b": now.AddDate(0, 6, 0).Format(time.RFC3339),
		"expires_c": now.AddDate(0, 9, 0).Format(time.RFC3339), "expires_d": now.AddDate(2, 0, 0).Format(time.RFC3339),
	})
}

func csvOf(d *ml.Dataset) []byte {
	var b bytes.Buffer
	d.WriteCSV(&b, ml.LabelColumn)
	return b.Bytes()
}
