package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// memService is the minimal honest Service the API tests run against: Pads and programs are
// stored only after their whole body read without error; everything else is looked up in maps.
// It enforces one rule so denials have something to say: a Pad may be released or queried only
// by its uploader, and jobs must not have the purpose "marketing".
type memService struct {
	mu       sync.Mutex
	pads     map[string][]byte
	owners   map[string]party.ID
	programs map[string][]byte
	jobs     map[string]*JobStatus
	revoked  map[string]string
	readErrs []error // every body read error seen, in order
	uploadFn func(body io.Reader) error
}

var _ Service = (*memService)(nil)

func newMemService() *memService {
	return &memService{
		pads: map[string][]byte{}, owners: map[string]party.ID{}, programs: map[string][]byte{},
		jobs: map[string]*JobStatus{}, revoked: map[string]string{},
	}
}

func (m *memService) readBody(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		m.mu.Lock()
		m.readErrs = append(m.readErrs, err)
		m.mu.Unlock()
		return nil, fmt.Errorf("store upload: %w", err)
	}
	return b, nil
}

func (m *memService) UploadPad(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*PadInfo, error) {
	b, err := m.readBody(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	id := "pad-" + hex.EncodeToString(sum[:8])
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pads[id]; ok {
		return nil, fmt.Errorf("pad %s: %w", id, ErrConflict)
	}
	m.pads[id], m.owners[id] = b, caller.ID()
	return m.info(id), nil
}

func (m *memService) info(id string) *PadInfo {
	st := PadLive
	if _, ok := m.revoked[id]; ok {
		st = PadRevoked
	}
	return &PadInfo{ID: id, Owner: m.owners[id].String(), Size: int64(len(m.pads[id])), State: st,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (m *memService) ListPads(ctx context.Context, caller *party.Identity, req *ListPadsRequest) (*PadList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.pads))
	for id := range m.pads {
		if id > req.After && (req.Owner == "" || m.owners[id].String() == req.Owner) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := &PadList{Pads: []PadInfo{}}
	for _, id := range ids {
		if req.Limit > 0 && len(out.Pads) == req.Limit {
			out.Next = out.Pads[len(out.Pads)-1].ID
			break
		}
		out.Pads = append(out.Pads, *m.info(id))
	}
	return out, nil
}

func (m *memService) Pad(ctx context.Context, caller *party.Identity, id string) (*PadInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pads[id]; !ok {
		return nil, fmt.Errorf("pad %s: %w", id, ErrNotFound)
	}
	return m.info(id), nil
}

func (m *memService) AddProgram(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*ProgramInfo, error) {
	b, err := m.readBody(body)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	m.mu.Lock()
	m.programs[h] = b
	m.mu.Unlock()
	return &ProgramInfo{SHA256: h, Size: int64(len(b)), AddedBy: caller.ID().String()}, nil
}

func (m *memService) decide(caller *party.Identity, spec *JobSpec) *Explanation {
	ex := &Explanation{Allowed: true}
	names := make([]string, 0, len(spec.Inputs))
	for n := range spec.Inputs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		d := Decision{Pad: spec.Inputs[n], Input: n, Action: "use", Allowed: true, Reasons: []string{"permitted by test rule"}}
		if _, ok := m.pads[d.Pad]; !ok {
			d.Allowed, d.Reasons = false, []string{"pad " + d.Pad + " does not exist"}
		} else if spec.Purpose == "marketing" {
			d.Allowed, d.Reasons = false, []string{"pad " + d.Pad + ": purpose marketing is forbidden"}
		}
		ex.Allowed = ex.Allowed && d.Allowed
		ex.Decisions = append(ex.Decisions, d)
	}
	return ex
}

func (m *memService) SubmitJob(ctx context.Context, caller *party.Identity, spec *JobSpec) (*JobStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.programs[spec.Program]; !ok {
		return nil, fmt.Errorf("program %s: %w", spec.Program, ErrNotFound)
	}
	ex := m.decide(caller, spec)
	if !ex.Allowed {
		var reasons []string
		for _, d := range ex.Decisions {
			if !d.Allowed {
				reasons = append(reasons, d.Reasons...)
			}
		}
		return nil, Denied("job refused", reasons...)
	}
	id := fmt.Sprintf("job-%d", len(m.jobs)+1)
	st := &JobStatus{ID: id, State: JobQueued, Submitter: caller.ID().String(), Spec: *spec}
	if spec.Wait {
		st.State, st.Outputs = JobDone, map[string]string{}
	}
	m.jobs[id] = st
	return st, nil
}

func (m *memService) ExplainJob(ctx context.Context, caller *party.Identity, spec *JobSpec) (*Explanation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.decide(caller, spec), nil
}

func (m *memService) Job(ctx context.Context, caller *party.Identity, id string, wait bool) (*JobStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if wait {
		st.State = JobDone // the test engine finishes jobs when someone waits for them
	}
	cp := *st
	return &cp, nil
}

// ownedPad returns a Pad's bytes if caller owns it; the test's stand-in for policy.
func (m *memService) ownedPad(caller *party.Identity, id, action string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.pads[id]
	if !ok {
		return nil, fmt.Errorf("pad %s: %w", id, ErrNotFound)
	}
	if why, ok := m.revoked[id]; ok {
		return nil, Denied(action+" refused", "pad "+id+" is revoked: "+why)
	}
	if m.owners[id] != caller.ID() {
		return nil, Denied(action+" refused", "pad "+id+": only the owner may "+action)
	}
	return b, nil
}

func (m *memService) Release(ctx context.Context, caller *party.Identity, id string) (io.ReadCloser, error) {
	b, err := m.ownedPad(caller, id, "release")
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memService) Query(ctx context.Context, caller *party.Identity, id string, q *QueryRequest) (*QueryResponse, error) {
	if _, err := m.ownedPad(caller, id, "query"); err != nil {
		return nil, err
	}
	return SealAnswer(caller, id, q, bytes.ToUpper(q.Input))
}

func (m *memService) UpdatePolicy(ctx context.Context, caller *party.Identity, u *SignedPolicyUpdate) (*PadInfo, error) {
	signer, err := u.Verify()
	if err != nil {
		return nil, err
	}
	if _, err := m.ownedPad(signer, u.Pad, "update"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	info := m.info(u.Pad)
	info.PolicyVersion = 2
	return info, nil
}

func (m *memService) Revoke(ctx context.Context, caller *party.Identity, rv *Revocation) (*RevokeResult, error) {
	signer, err := rv.Verify()
	if err != nil {
		return nil, err
	}
	if _, err := m.ownedPad(signer, rv.Pad, "revoke"); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revoked[rv.Pad] = rv.Reason
	return &RevokeResult{Pad: rv.Pad}, nil
}

func (m *memService) Audit(ctx context.Context, caller *party.Identity, q *AuditQuery) (*AuditPage, error) {
	rec := fmt.Sprintf(`{"v":1,"kind":"use","pads":[%q]}`, q.Pad)
	return &AuditPage{Entries: []AuditEntry{{Index: q.From, Record: []byte(rec)}}}, nil
}

func (m *memService) AuditHead(ctx context.Context, caller *party.Identity, old uint64) (*TreeHead, error) {
	h := &TreeHead{Size: old + 1, Hash: make([]byte, 32)}
	if old > 0 {
		h.Proof = [][]byte{make([]byte, 32)}
	}
	return h, nil
}

func (m *memService) Lineage(ctx context.Context, caller *party.Identity, id string) (*Lineage, error) {
	if _, err := m.Pad(ctx, caller, id); err != nil {
		return nil, err
	}
	return &Lineage{Root: id, Nodes: []LineageNode{{Pad: id, State: PadLive}}}, nil
}

func (m *memService) Receipt(ctx context.Context, caller *party.Identity, id string) ([]byte, error) {
	if id == "boom" {
		return nil, fmt.Errorf("disk on fire at /var/lib/styx/secret-path")
	}
	return []byte(`{"receipt":"` + id + `"}`), nil
}
