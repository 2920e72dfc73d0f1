package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

// TestClientScripts runs testdata/client/*.txt against an in-process node: a real simulated
// cluster node (attestation, TLS key, cluster key) in front of the api server, with a small
// in-memory service standing in for the engine. The engine end to end is tested elsewhere;
// these scenarios check what the commands send, print and refuse.
func TestClientScripts(t *testing.T) {
	node := simNode(t, [32]byte{0xc0, 0xde})
	tlsConfig, err := node.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(t.TempDir(), audit.Options{Origin: "styx.test", Signer: rawSigner{node.Key()}, PublicKey: node.Key().Identity().SigningKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alog.Close() })
	svc := newScriptService(node.Key())
	svc.alog = alog
	srv, err := api.NewServer(api.Config{Service: svc, Attestation: node.Handler(),
		TLS: tlsConfig, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.TLS = tlsConfig
	ts.StartTLS()
	t.Cleanup(ts.Close)
	dev := `{"allow_simulated": true, "tee": {"sim": {"measurements": [{"measurement": "c0de` + strings.Repeat("00", 30) + `"}]}}}`
	testscript.Run(t, testscript.Params{
		Dir: "testdata/client",
		Setup: func(env *testscript.Env) error {
			env.Setenv("STYX_SERVER", ts.URL)
			env.Setenv("STYX_PINS", filepath.Join(env.WorkDir, "pins.json"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			return os.WriteFile(filepath.Join(env.WorkDir, "dev.json"), []byte(dev), 0o644)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// envfile VAR FILE sets $VAR to the trimmed contents of FILE (an id a command printed).
			"envfile": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 2 {
					ts.Fatalf("usage: envfile VAR FILE")
				}
				ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
			},
		},
	})
}

// scriptService is the in-memory stand-in for the engine: it stores what it is given, lets
// only a Pad's uploader release, query, update or revoke it, refuses the purpose "marketing",
// and releases by sealing the stored bytes to the caller with the cluster key, as the engine does.
type scriptService struct {
	cluster *party.Key
	alog    *audit.Log // signs tree heads with the cluster key, as the node's log does
	mu      sync.Mutex
	pads    map[string][]byte
	owners  map[string]party.ID
	revoked map[string]string
	version map[string]uint64
	progs   map[string]bool
	jobs    map[string]*api.JobStatus
	events  [][]byte
}

func newScriptService(clusterKey *party.Key) *scriptService {
	return &scriptService{cluster: clusterKey, pads: map[string][]byte{}, owners: map[string]party.ID{},
		revoked: map[string]string{}, version: map[string]uint64{}, progs: map[string]bool{}, jobs: map[string]*api.JobStatus{}}
}

var scriptTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func (s *scriptService) log(kind audit.Kind, actor *party.Identity, pads ...string) {
	ev := audit.Event{Kind: kind, Time: scriptTime, Actor: actor.ID().String(), Pads: pads}
	b, err := audit.MarshalRecord(&ev)
	if err != nil {
		panic(err)
	}
	if _, err := s.alog.Append(context.Background(), ev); err != nil {
		panic(err)
	}
	s.events = append(s.events, b)
}

// rawSigner signs tree-head notes with a party key, as the node does with the cluster key.
type rawSigner struct{ k *party.Key }

func (r rawSigner) Sign(msg []byte) ([]byte, error) { return r.k.SignRaw(msg) }

func (s *scriptService) UploadPad(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*api.PadInfo, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	id := "pad-" + hex.EncodeToString(sum[:4])
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.pads[id]; dup {
		return nil, fmt.Errorf("pad %s is already stored: %w", id, api.ErrConflict)
	}
	s.pads[id], s.owners[id], s.version[id] = b, caller.ID(), 1
	s.log(audit.Kind("upload"), caller, id)
	return s.info(id), nil
}

func (s *scriptService) info(id string) *api.PadInfo {
	st := api.PadLive
	if _, ok := s.revoked[id]; ok {
		st = api.PadRevoked
	}
	return &api.PadInfo{ID: id, Owner: s.owners[id].String(), Size: int64(len(s.pads[id])), State: st,
		PolicyVersion: s.version[id], Created: scriptTime, RevokedReason: s.revoked[id]}
}

func (s *scriptService) ListPads(ctx context.Context, caller *party.Identity, req *api.ListPadsRequest) (*api.PadList, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &api.PadList{Pads: []api.PadInfo{}}
	for id := range s.pads {
		if id > req.After {
			out.Pads = append(out.Pads, *s.info(id))
		}
	}
	slices.SortFunc(out.Pads, func(a, b api.PadInfo) int { return strings.Compare(a.ID, b.ID) })
	if len(out.Pads) > 1 { // page one at a time so the CLI's paging is exercised
		out.Pads, out.Next = out.Pads[:1], out.Pads[0].ID
	}
	return out, nil
}

func (s *scriptService) Pad(ctx context.Context, caller *party.Identity, id string) (*api.PadInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pads[id]; !ok {
		return nil, fmt.Errorf("pad %s: %w", id, api.ErrNotFound)
	}
	return s.info(id), nil
}

func (s *scriptService) AddProgram(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*api.ProgramInfo, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	s.mu.Lock()
	s.progs[hex.EncodeToString(sum[:])] = true
	s.mu.Unlock()
	return &api.ProgramInfo{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b)), Added: scriptTime}, nil
}

func (s *scriptService) explain(spec *api.JobSpec) *api.Explanation {
	ex := &api.Explanation{Allowed: true}
	for _, name := range slices.Sorted(mapsKeys(spec.Inputs)) {
		id := spec.Inputs[name]
		d := api.Decision{Pad: id, Input: name, Action: "use", Allowed: true, Reasons: []string{"rule 0 permits purpose " + spec.Purpose}}
		switch {
		case s.pads[id] == nil:
			d.Allowed, d.Reasons = false, []string{"no such Pad"}
		case s.revoked[id] != "":
			d.Allowed, d.Reasons = false, []string{"revoked by its owner: " + s.revoked[id]}
		case spec.Purpose == "marketing":
			d.Allowed, d.Reasons = false, []string{"rule 0 forbids purpose marketing"}
		}
		ex.Allowed = ex.Allowed && d.Allowed
		ex.Decisions = append(ex.Decisions, d)
	}
	return ex
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *scriptService) SubmitJob(ctx context.Context, caller *party.Identity, spec *api.JobSpec) (*api.JobStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.progs[spec.Program] {
		return nil, fmt.Errorf("program %s: %w", spec.Program, api.ErrNotFound)
	}
	ex := s.explain(spec)
	id := fmt.Sprintf("job-%d", len(s.jobs)+1)
	st := &api.JobStatus{ID: id, State: api.JobQueued, Submitter: caller.ID().String(), Spec: *spec, Submitted: scriptTime}
	if !ex.Allowed {
		st.State = api.JobDenied
		st.Error = api.Denied("admission refused")
		for _, d := range ex.Decisions {
			if !d.Allowed {
				st.Error.Reasons = append(st.Error.Reasons, "pad "+d.Pad+": "+strings.Join(d.Reasons, "; "))
			}
		}
	}
	s.jobs[id] = st
	if spec.Wait && st.State == api.JobQueued {
		s.finish(st)
	}
	cp := *st
	return &cp, nil
}

func (s *scriptService) finish(st *api.JobStatus) {
	st.State, st.Outputs, st.Receipt = api.JobDone, map[string]string{}, "receipt-"+st.ID
	for _, o := range st.Spec.Outputs {
		st.Outputs[o.Name] = "derived-" + st.ID + "-" + o.Name
	}
}

func (s *scriptService) ExplainJob(ctx context.Context, caller *party.Identity, spec *api.JobSpec) (*api.Explanation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.explain(spec), nil
}

func (s *scriptService) Job(ctx context.Context, caller *party.Identity, id string, wait bool) (*api.JobStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, api.ErrNotFound)
	}
	if wait && st.State == api.JobQueued {
		s.finish(st)
	}
	cp := *st
	return &cp, nil
}

func (s *scriptService) owned(caller *party.Identity, id, action string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.pads[id]
	switch {
	case !ok:
		return nil, fmt.Errorf("pad %s: %w", id, api.ErrNotFound)
	case s.revoked[id] != "":
		return nil, api.Denied(action+" refused", "pad "+id+": revoked by its owner: "+s.revoked[id])
	case s.owners[id] != caller.ID():
		return nil, api.Denied(action+" refused", "pad "+id+": the policy lets only its owner "+action)
	}
	return b, nil
}

func (s *scriptService) Release(ctx context.Context, caller *party.Identity, id string) (io.ReadCloser, error) {
	b, err := s.owned(caller, id, "release")
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = pad.Seal(&out, bytes.NewReader(b), pad.SealOptions{Signer: s.cluster, Recipients: []*party.Identity{caller},
		Policy: []byte("released to the caller"), PolicyType: "text/plain", Size: int64(len(b))})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.log(audit.KindRelease, caller, id)
	s.mu.Unlock()
	return io.NopCloser(&out), nil
}

func (s *scriptService) Query(ctx context.Context, caller *party.Identity, id string, q *api.QueryRequest) (*api.QueryResponse, error) {
	if _, err := s.owned(caller, id, "query"); err != nil {
		return nil, err
	}
	return api.SealAnswer(caller, id, q, []byte(fmt.Sprintf("answer to %q\n", strings.TrimSpace(string(q.Input)))))
}

func (s *scriptService) UpdatePolicy(ctx context.Context, caller *party.Identity, u *api.SignedPolicyUpdate) (*api.PadInfo, error) {
	signer, err := u.Verify()
	if err != nil {
		return nil, err
	}
	if _, err := s.owned(signer, u.Pad, "update"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version[u.Pad]++
	s.log(audit.KindPolicyUpdate, signer, u.Pad)
	return s.info(u.Pad), nil
}

func (s *scriptService) Revoke(ctx context.Context, caller *party.Identity, rv *api.Revocation) (*api.RevokeResult, error) {
	signer, err := rv.Verify()
	if err != nil {
		return nil, err
	}
	if _, err := s.owned(signer, rv.Pad, "revoke"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[rv.Pad] = rv.Reason
	s.log(audit.KindRevoke, signer, rv.Pad)
	return &api.RevokeResult{Pad: rv.Pad, Descendants: []string{"derived-job-1-model"}, Shredded: []string{"derived-job-1-model"}}, nil
}

func (s *scriptService) Audit(ctx context.Context, caller *party.Identity, q *api.AuditQuery) (*api.AuditPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	page := &api.AuditPage{Entries: []api.AuditEntry{}}
	for i := int(q.From); i < len(s.events); i++ {
		if q.Pad == "" || bytes.Contains(s.events[i], []byte(`"`+q.Pad+`"`)) {
			page.Entries = append(page.Entries, api.AuditEntry{Index: uint64(i), Record: s.events[i]})
		}
	}
	return page, nil
}

// AuditHead signs the current head. It leaves TreeHead.Signer empty, so the CLI takes the
// cluster identity from the attestation bundle.
func (s *scriptService) AuditHead(ctx context.Context, caller *party.Identity, old uint64) (*api.TreeHead, error) {
	sh, err := s.alog.SignHead(ctx)
	if err != nil {
		return nil, err
	}
	th := &api.TreeHead{Size: uint64(sh.Size), Hash: sh.Root[:], Signed: sh.Note}
	if old > 0 && int64(old) <= sh.Size {
		p, err := s.alog.ProveConsistency(int64(old), sh.Size)
		if err != nil {
			return nil, err
		}
		for _, h := range p {
			th.Proof = append(th.Proof, h[:])
		}
	}
	return th, nil
}

func (s *scriptService) Lineage(ctx context.Context, caller *party.Identity, id string) (*api.Lineage, error) {
	if _, err := s.Pad(ctx, caller, id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &api.Lineage{Root: id, Nodes: []api.LineageNode{
		{Pad: id, State: s.info(id).State},
		{Pad: "derived-job-1-model", State: api.PadRevoked, Kind: "model", Job: "job-1", Parents: []string{id, "pad-other"}},
	}}, nil
}

func (s *scriptService) Receipt(ctx context.Context, caller *party.Identity, id string) ([]byte, error) {
	if !strings.HasPrefix(id, "receipt-") {
		return nil, fmt.Errorf("receipt %s: %w", id, api.ErrNotFound)
	}
	return []byte(`{"receipt":"` + id + `"}` + "\n"), nil
}
