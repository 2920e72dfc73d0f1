package engine

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/sandbox"
)

// PoolSize is the number of warm instances serving one model to one querier.
const PoolSize = 2

// queryServer answers queries on model Pads from warm sandbox instances (one pool per model,
// serving program and querier), batches their audit events, caches the chains queries decide
// on, holds the leases of query counters and remembers the allows that hold for a while.
type queryServer struct {
	e         *Engine
	mu        sync.Mutex
	pools     map[poolKey]*modelPool
	batch     map[batchKey]*batchCount
	chains    chainCache
	leases    leaseTable
	decisions decisionMemo
}

type modelPool struct {
	pad  string
	pool *sandbox.Pool
}

// The pools and audit batches are keyed by the querier's id itself, not its text: the text
// costs a hash and two allocations, and the keys are looked up on every query.
type poolKey struct {
	pad, program string
	querier      party.ID
}

type batchKey struct {
	pad     string
	querier party.ID
}

type batchCount struct{ allowed, denied int }

func newQueryServer(e *Engine) *queryServer {
	return &queryServer{e: e, pools: map[poolKey]*modelPool{}, batch: map[batchKey]*batchCount{}}
}

var _ api.QuerySessionService = (*Engine)(nil)

// Query answers one query on a model Pad: a policy check on the model's whole chain with a
// per-querier counter, then the answer from a warm instance, sealed to the querier.
func (e *Engine) Query(ctx context.Context, caller *party.Identity, id string, q *api.QueryRequest) (*api.QueryResponse, error) {
	e.rememberParty(ctx, caller)
	answer, err := e.answer(ctx, caller, id, q.Program, q.Input)
	if err != nil {
		return nil, err
	}
	return api.SealAnswer(caller, id, q, answer)
}

// CheckQuery decides whether caller may query model id through program now, without taking a
// use: the check behind opening a query session. Every query of the session is decided again.
func (e *Engine) CheckQuery(ctx context.Context, caller *party.Identity, id, program string) error {
	e.rememberParty(ctx, caller)
	ch, err := e.modelChain(ctx, id)
	if err != nil {
		return err
	}
	d, err := e.decideQuery(ctx, ch, caller.ID(), program)
	if err != nil {
		return err
	}
	if !d.Allow {
		return deniedError("query session on "+id, d)
	}
	return nil
}

// Answer answers one query of a query session exactly as Query does (decision on the current
// chain, a use of every query counter, the batched audit) and returns the answer in plaintext
// for the API server to seal under the session's answer key.
func (e *Engine) Answer(ctx context.Context, caller *party.Identity, id, program string, input []byte) ([]byte, error) {
	return e.answer(ctx, caller, id, program, input)
}

// answer decides one query on the model's current chain, takes its uses and computes the answer.
func (e *Engine) answer(ctx context.Context, caller *party.Identity, id, program string, input []byte) ([]byte, error) {
	ch, err := e.modelChain(ctx, id)
	if err != nil {
		return nil, err
	}
	d, err := e.admitQuery(ctx, ch, caller.ID(), program)
	if err != nil {
		return nil, err
	}
	pool, err := e.queries.pool(ctx, ch.pad, program, caller.ID())
	if err != nil {
		return nil, err
	}
	answer, err := pool.Query(ctx, input)
	if err != nil {
		// Only which way it failed: a refusal's exit code is the program's choice, an answer that
		// would bypass the output checks below.
		return nil, api.Errorf(api.ErrBadRequest, "query failed: %s", sandbox.PublicError(err))
	}
	if max := d.Obligations.Output.MaxBytes; max > 0 && int64(len(answer)) > max {
		e.queries.count(id, caller.ID(), false)
		return nil, api.Denied(fmt.Sprintf("answer of %d bytes exceeds the %d bytes the policies allow", len(answer), max))
	}
	e.queries.count(id, caller.ID(), true)
	return answer, nil
}

// modelChain returns the chain of a model Pad for a query (cached, see queryChain).
func (e *Engine) modelChain(ctx context.Context, id string) (*chain, error) {
	ch, err := e.queryChain(ctx, id)
	if err != nil {
		return nil, err
	}
	if ch.pad.Kind != string(policy.KindModel) {
		return nil, api.Errorf(api.ErrBadRequest, "Pad %s is not a model (kind %q): only model Pads answer queries", id, ch.pad.Kind)
	}
	return ch, nil
}

// admitQuery decides one query on the model's chain and takes its uses. A deny is counted in
// the audit batch and returned as an error.
func (e *Engine) admitQuery(ctx context.Context, ch *chain, caller party.ID, program string) (policy.Decision, error) {
	d, err := e.decideQuery(ctx, ch, caller, program)
	if err != nil {
		return d, err
	}
	if d.Allow {
		if err := e.reserveQuery(ctx, &d); err != nil {
			return d, err
		}
	}
	if !d.Allow {
		e.queries.count(ch.pad.ID, caller, false)
		return d, deniedError("query on "+ch.pad.ID, d)
	}
	return d, nil
}

// decideQuery decides a query by caller through program on ch with the uses this engine's
// leases know of. The revocations, the chain and the counters are read for every query; the
// evaluation itself is skipped while an earlier allow on the same chain provably holds
// (decisionMemo), which needs a policy engine that says how long its decisions hold.
func (e *Engine) decideQuery(ctx context.Context, ch *chain, caller party.ID, program string) (policy.Decision, error) {
	if ch.revoked != "" {
		return revokedDecision(ch, policy.ActionQuery), nil
	}
	uses, err := e.queryUses(ctx, ch.pad.ID, caller)
	if err != nil {
		return policy.Decision{}, err
	}
	req := e.policyRequest(request{caller: caller, action: policy.ActionQuery, program: program,
		output: &policy.OutputClaim{Kind: policy.KindPrediction, Recipients: []party.ID{caller}}}, uses)
	ve, ok := e.pol.(policy.ValidityEngine)
	if !ok {
		return e.pol.Decide(&ch.pc, req), nil
	}
	k := poolKey{ch.pad.ID, program, caller}
	if d, ok := e.queries.decisions.get(k, &ch.pc, req); ok {
		return d, nil
	}
	d, v := ve.DecideWithValidity(&ch.pc, req)
	e.queries.decisions.put(k, &ch.pc, req, d, v)
	return d, nil
}

// pool returns the warm pool for a model, program and querier, creating it on first use. A
// warm instance keeps its memory between queries, so instances are never shared between
// queriers: one querier's questions cannot reach another's answers through guest state.
func (qs *queryServer) pool(ctx context.Context, model *padRecord, program string, querier party.ID) (*sandbox.Pool, error) {
	key := poolKey{model.ID, program, querier}
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if mp, ok := qs.pools[key]; ok {
		return mp.pool, nil
	}
	wasm, err := qs.e.program(ctx, program)
	if err != nil {
		return nil, err
	}
	p, err := qs.e.sb.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	pl, err := qs.e.sb.NewPool(p, PoolSize, func() sandbox.Host { return &modelHost{e: qs.e, rec: model} })
	if err != nil {
		return nil, err
	}
	qs.pools[key] = &modelPool{pad: model.ID, pool: pl}
	return pl, nil
}

// drop closes the pools of the given models (all pools if pads is nil). They are closed after
// qs.mu is released: closing warm instances takes a while, and queries of other models must not
// wait for it.
func (qs *queryServer) drop(pads map[string]bool) {
	var gone []*modelPool
	qs.mu.Lock()
	for k, mp := range qs.pools {
		if pads == nil || pads[mp.pad] {
			gone = append(gone, mp)
			delete(qs.pools, k)
		}
	}
	qs.mu.Unlock()
	for _, mp := range gone {
		mp.pool.Close(context.Background())
	}
}

func (qs *queryServer) close() {
	qs.drop(nil)
	qs.flush(context.Background())
}

func (qs *queryServer) count(pad string, querier party.ID, allowed bool) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	k := batchKey{pad, querier}
	c := qs.batch[k]
	if c == nil {
		c = &batchCount{}
		qs.batch[k] = c
	}
	if allowed {
		c.allowed++
	} else {
		c.denied++
	}
}

func (qs *queryServer) flushLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			qs.flush(ctx)
		}
	}
}

// flush writes one query.batch event per model and querier seen since the last flush.
func (qs *queryServer) flush(ctx context.Context) {
	qs.mu.Lock()
	batch := qs.batch
	qs.batch = map[batchKey]*batchCount{}
	qs.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	type entry struct {
		pad, querier string
		c            *batchCount
	}
	entries := make([]entry, 0, len(batch))
	for k, c := range batch {
		entries = append(entries, entry{k.pad, k.querier.String(), c})
	}
	sort.Slice(entries, func(i, j int) bool {
		return entries[i].pad+entries[i].querier < entries[j].pad+entries[j].querier
	})
	evs := make([]audit.Event, 0, len(entries))
	for _, en := range entries {
		evs = append(evs, audit.Event{Kind: audit.KindQueryBatch, Actor: en.querier, Pads: []string{en.pad},
			Details: map[string]string{"allowed": fmt.Sprint(en.c.allowed), "denied": fmt.Sprint(en.c.denied)}})
	}
	if _, err := qs.e.audit.AppendBatch(context.WithoutCancel(ctx), evs); err != nil {
		qs.e.log.Error("audit query batch", "err", err)
	}
}

// FlushQueries writes pending query audit batches now (tests and shutdown).
func (e *Engine) FlushQueries(ctx context.Context) { e.queries.flush(ctx) }

// modelHost is what a warm serving instance sees: the model, read-only, and nothing else.
type modelHost struct {
	e   *Engine
	rec *padRecord
}

func (m *modelHost) Inputs() []sandbox.Input {
	return []sandbox.Input{{Name: "model", Kind: m.rec.Kind, Size: m.rec.Size}}
}
func (m *modelHost) Params() []byte { return nil }
func (m *modelHost) Log([]byte)     {}

func (m *modelHost) Open(name string) (io.Reader, error) {
	if name != "model" {
		return nil, fmt.Errorf("no input %q: a serving instance sees only its model", name)
	}
	rc, pt, err := m.e.openPad(context.Background(), m.rec)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{pt, rc}, nil
}

func (m *modelHost) Create(name string, kind sandbox.Kind) (io.WriteCloser, error) {
	return nil, fmt.Errorf("a serving instance cannot create outputs (%s:%s): answers go only to the querier", name, strings.ToLower(string(kind)))
}
