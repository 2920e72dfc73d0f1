package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/sandbox"
)

// jobHost is the sandbox's view of one job: the input pipeline on the way in, the output
// capture on the way out. The sandbox calls it from one goroutine at a time.
//
// The job is decided again when it starts (prepare), while the guest boots: no input is listed
// or opened before that decision allows the job, and the inputs' Pads are opened ahead, once it
// has, so that the program does not wait for their signatures and key unwraps.
type jobHost struct {
	e      *Engine
	ctx    context.Context
	cancel context.CancelCauseFunc // aborts the job (an input expired mid-run)
	caller party.ID
	job    string
	spec   *api.JobSpec

	// Set by prepare before ready is closed, and read only after.
	ready    chan struct{}
	startErr error // the start decision failed (not a denial: that cancels the job)
	adm      *admission
	inputs   []sandbox.Input
	ahead    map[string]openedPad // Pads opened ahead of the program's first Open of each input

	rows  map[string]int64 // input name → data rows read so far (CSV)
	read  []string         // input names in the order they were first opened
	outs  []*capture
	logs  bytes.Buffer
	epoch uint64            // the engine's epoch when the job was last decided
	own   map[string]uint64 // the uses the job's admission reserved (see admit)

	admitted *admitted // the admission, given to a guest booted ahead (see boot); or nil
	// claim is the job's claim if the run began before it was durable (claim.go), or nil:
	// nothing of the job is written before it holds.
	claim *pendingClaim
	// The engine's epoch before the reads of the chains in adm began, and when they began
	// (set by prepare, read after the program's end: lastDecision).
	admEpoch uint64
	admRead  time.Time
}

// admitted is the admission of a job whose guest was booted ahead, with the job's Pads it
// opened ahead.
type admitted struct {
	adm    *admission
	read   time.Time     // when the admission's reads began
	epoch  uint64        // the engine's epoch before the admission's first read
	done   chan struct{} // closed once opened is set
	opened map[string]openedPad
}

// close closes what a, if not nil, opened, once the opening is done.
func (a *admitted) close() {
	if a == nil {
		return
	}
	<-a.done
	closePads(a.opened)
}

func closePads(m map[string]openedPad) {
	for name, o := range m {
		if o.err == nil {
			o.c.Close()
		}
		delete(m, name)
	}
}

// openedPad is an input Pad opened ahead: what openPad returned.
type openedPad struct {
	c   io.Closer
	pt  io.Reader
	err error
}

// newJobHost returns the host of a job about to run, or of a guest booted ahead of its job's
// claim. Its start must be called once the job is claimed, and done when the program has ended
// (if it was started).
func (e *Engine) newJobHost(ctx context.Context, cancel context.CancelCauseFunc, caller party.ID, job string, spec *api.JobSpec) *jobHost {
	return &jobHost{e: e, ctx: ctx, cancel: cancel, caller: caller, job: job, spec: spec, ready: make(chan struct{}),
		rows: map[string]int64{}}
}

// start runs the start decision (prepare) in the background; own are the uses the job's
// admission reserved. The engine's epoch is read first, so that a change stored during the
// decision is seen by its reads.
func (h *jobHost) start(own map[string]uint64) {
	h.epoch, h.own = h.e.epoch.Load(), own
	go h.prepare()
}

// prepare decides the job again on the chains as they are now (policies may have changed since
// admission: update, revocation, expiry) and, if it is still allowed, opens every input's Pad
// at once. A denial aborts the job; an error is kept in startErr. It closes ready when done.
//
// A guest booted ahead was given its job's admission, and its Pads were opened meanwhile
// (admitAhead). If the engine's epoch has not moved since that admission's reads began, no
// revocation, policy update or retention deletion was stored since on this node, nor told by
// another: the chains read then are the chains now, and the admission's requests are decided
// again on them (redecide: an expiry since still denies). Otherwise they are read again.
// Either way a change stored from then on moves the epoch, and the program's next read
// decides again (recheck), as does the last decision (lastDecision).
func (h *jobHost) prepare() {
	defer close(h.ready)
	h.e.at("start decision")
	var adm *admission
	if a := h.admitted; a != nil {
		<-a.done
		if h.e.epoch.Load() == a.epoch {
			adm, h.ahead = h.e.redecide(a.adm), a.opened
			h.admEpoch, h.admRead = a.epoch, a.read
			h.e.at("start decision on the admission")
		} else {
			closePads(a.opened)
		}
	}
	if adm == nil {
		var err error
		h.admEpoch, h.admRead = h.epoch, time.Now()
		if adm, err = h.e.admit(h.ctx, h.caller, h.job, h.spec, false, h.own); err != nil {
			h.startErr = err
			h.cancel(err)
			return
		}
	}
	h.adm = adm
	if !adm.allowed {
		h.cancel(&abortError{reasons: adm.reasons()})
		return
	}
	for _, name := range adm.inputs {
		rec := adm.chains[name].pad
		kind := rec.ContentType
		if rec.Derived {
			kind = rec.Kind
		}
		// The plaintext size is known from the Pad, unless input rules will change it.
		size := rec.Size
		if len(adm.useDecision(name).Obligations.InputRules()) > 0 {
			size = -1
		}
		h.inputs = append(h.inputs, sandbox.Input{Name: name, Kind: kind, Size: size})
	}
	if h.ahead == nil {
		h.ahead = h.openInputs(adm)
	}
}

// lastDecision decides the job again once its program has ended (see outputPipeline). If the
// engine's epoch has not moved since the reads of the chains the job started on began, and
// they began less than chainTTL ago, those chains are the chains now: the start decision's
// requests are decided again on them, at the present time (redecide), as a query decides on
// the chains it cached. Otherwise every chain is read again. A revocation stored meanwhile
// is also caught by the read of every revocation once the derived Pads exist (revokedSince).
func (h *jobHost) lastDecision(ctx context.Context) (*admission, error) {
	if h.e.epoch.Load() == h.admEpoch && time.Since(h.admRead) < chainTTL {
		h.e.at("last decision on the start's chains")
		return h.e.redecide(h.adm), nil
	}
	return h.e.admit(ctx, h.caller, h.job, h.spec, false, h.own)
}

// openInputs opens the Pad of every input of adm at once.
func (h *jobHost) openInputs(adm *admission) map[string]openedPad {
	opened := make([]openedPad, len(adm.inputs))
	var wg sync.WaitGroup
	for i, name := range adm.inputs {
		wg.Go(func() {
			o := &opened[i]
			o.c, o.pt, o.err = h.e.openPad(h.ctx, adm.chains[name].pad)
		})
	}
	wg.Wait()
	m := make(map[string]openedPad, len(opened))
	for i, name := range adm.inputs {
		m[name] = opened[i]
	}
	return m
}

// started waits for prepare and reports whether the program may have its inputs. A guest booted
// ahead of its job's claim waits here until then, or until its boot is dropped.
func (h *jobHost) started() error {
	select {
	case <-h.ready:
	case <-h.ctx.Done():
		return fmt.Errorf("the job stopped before its start decision: %w", context.Cause(h.ctx))
	}
	if h.startErr != nil {
		return fmt.Errorf("the job's start decision failed: %w", h.startErr)
	}
	if !h.adm.allowed {
		return errors.New("job aborted: " + strings.Join(h.adm.reasons(), "; "))
	}
	return nil
}

// done waits for prepare and closes the Pads opened ahead that the program never opened.
func (h *jobHost) done() {
	<-h.ready
	closePads(h.ahead)
}

func (h *jobHost) Inputs() []sandbox.Input {
	if h.started() != nil {
		return nil
	}
	return h.inputs
}
func (h *jobHost) Params() []byte { return h.spec.Params }
func (h *jobHost) Log(p []byte)   { h.logs.Write(p) }

// Open is the input pipeline: it authenticates and decrypts the input Pad as a stream, applies
// its owners' input rules, and re-checks the job's liveness on every read.
func (h *jobHost) Open(name string) (io.Reader, error) {
	if err := h.started(); err != nil {
		return nil, err
	}
	ch, ok := h.adm.chains[name]
	if !ok {
		return nil, fmt.Errorf("no input %q in this job", name)
	}
	o, ok := h.ahead[name]
	if ok {
		delete(h.ahead, name)
	} else { // opened before: open it again
		o.c, o.pt, o.err = h.e.openPad(h.ctx, ch.pad)
	}
	rc, pt, err := o.c, o.pt, o.err
	if err != nil {
		h.e.log.Warn("job input does not open", "job", h.job, "input", name, "pad", ch.pad.ID, "err", err)
		return nil, fmt.Errorf("input %s: %w", name, err)
	}
	d := h.adm.useDecision(name)
	var r io.Reader = pt
	if rules := d.Obligations.InputRules(); len(rules) > 0 {
		switch {
		case isCSV(ch.pad.ContentType):
			r = policy.FilterCSV(r, rules)
		case ownRules(d, ch.pad.ID):
			// The owner asked for its own payload to be filtered, and it is not a table: fail closed.
			rc.Close()
			return nil, fmt.Errorf("input %s: its owner's input rules need a CSV payload, the Pad holds %s", name, ch.pad.ContentType)
		default:
			// Column and row rules inherited from ancestors have nothing to act on in a derived
			// non-tabular Pad (a model): what may be derived from it is governed by derive rules.
		}
	}
	if !slices.Contains(h.read, name) {
		h.read = append(h.read, name)
	}
	return &liveReader{h: h, name: name, r: r, c: rc, expires: d.Obligations.Expires, csv: isCSV(ch.pad.ContentType)}, nil
}

// Create starts capturing a declared output. Nothing leaves the TEE here: outputs are checked
// and sealed after the program ends, and discarded if it fails.
func (h *jobHost) Create(name string, kind sandbox.Kind) (io.WriteCloser, error) {
	declared := false
	for _, o := range h.spec.Outputs {
		if o.Name == name && o.Kind == string(kind) {
			declared = true
		}
	}
	if !declared {
		return nil, fmt.Errorf("output %s:%s was not declared by the job", name, kind)
	}
	for _, c := range h.outs {
		if c.name == name {
			return nil, fmt.Errorf("output %s created twice", name)
		}
	}
	c := &capture{h: h, name: name, kind: string(kind)}
	h.outs = append(h.outs, c)
	return c, nil
}

// capture buffers one output; the sandbox caps the bytes of all outputs of a run.
type capture struct {
	h      *jobHost
	name   string
	kind   string
	buf    bytes.Buffer
	closed bool
	from   []string // inputs read before the output was closed: what flowed into it

	// The output sealed as soon as the program closed it (sealEarly), or nil. The output
	// pipeline takes it (taken); what it does not take, the job's end destroys (dropEarly).
	early chan *sealedOutput
	taken bool
}

func (c *capture) Write(p []byte) (int, error) {
	if c.closed {
		return 0, fmt.Errorf("output %s is closed", c.name)
	}
	return c.buf.Write(p)
}

func (c *capture) Close() error {
	if !c.closed {
		c.closed, c.from = true, slices.Clone(c.h.read)
		c.h.sealEarly(c)
	}
	return nil
}

// liveReader checks on every read that the job is still allowed to run (not aborted, inputs
// not expired, no revocation or policy update on this node since it was last decided) and
// counts CSV rows for aggregation limits.
type liveReader struct {
	h       *jobHost
	name    string
	r       io.Reader
	c       io.Closer
	expires time.Time
	csv     bool
}

func (l *liveReader) Read(p []byte) (int, error) {
	if err := context.Cause(l.h.ctx); err != nil {
		return 0, err
	}
	if !l.expires.IsZero() && !l.h.e.now().Before(l.expires) {
		// Abort the whole job, not only this read: a program that swallowed the error must not
		// get its outputs sealed.
		reason := fmt.Sprintf("input %s (Pad %s) expired at %s during the job", l.name, l.h.adm.chains[l.name].pad.ID, l.expires.UTC().Format(time.RFC3339))
		l.h.cancel(&abortError{reasons: []string{reason}})
		return 0, errors.New(reason)
	}
	if err := l.h.recheck(l.name); err != nil {
		return 0, err
	}
	n, err := l.r.Read(p)
	if l.csv {
		l.h.rows[l.name] += int64(bytes.Count(p[:n], []byte{'\n'}))
	}
	return n, err
}

func (l *liveReader) Close() error { return l.c.Close() }

// recheck decides the job again if a revocation or policy update was stored on this node since
// its last decision (a comparison of two integers otherwise), and aborts it if denied.
func (h *jobHost) recheck(input string) error {
	cur := h.e.epoch.Load()
	if cur == h.epoch {
		return nil
	}
	adm, err := h.e.admit(h.ctx, h.caller, h.job, h.spec, false, h.own)
	var reasons []string
	switch {
	case err != nil:
		reasons = []string{"re-check failed: " + err.Error()}
	case !adm.allowed:
		reasons = append(adm.reasons(), "noticed while the program read input "+input)
	default:
		h.epoch = cur
		return nil
	}
	h.cancel(&abortError{reasons: reasons})
	return errors.New("job aborted: " + strings.Join(reasons, "; "))
}

func isCSV(contentType string) bool {
	return strings.HasPrefix(contentType, "text/csv")
}

// openPad opens a stored Pad inside the TEE: with the cluster key for a Pad sealed to the
// cluster, with the key store for a derived one. It checks the blob is the Pad the record names.
func (e *Engine) openPad(ctx context.Context, rec *padRecord) (io.ReadCloser, io.Reader, error) {
	e.at("open pad")
	blob, err := e.blobs.Open(ctx, padBlob(rec.ID))
	if err != nil {
		return nil, nil, err
	}
	var h *pad.Header
	var pt io.Reader
	if rec.Derived {
		dk, kerr := e.dataKey(ctx, rec.ID)
		if kerr != nil {
			blob.Close()
			return nil, nil, kerr
		}
		h, pt, err = pad.OpenWithKey(blob, dk)
	} else {
		h, pt, err = pad.Open(blob, e.cfg.Cluster)
	}
	if err != nil {
		blob.Close()
		return nil, nil, err
	}
	if d := h.PolicyDigest(); h.ID.String() != rec.ID || fmt.Sprintf("%x", d[:]) != rec.PolicyDigest {
		blob.Close()
		return nil, nil, fmt.Errorf("%w: blob of %s holds Pad %s", errTamperedState, rec.ID, h.ID)
	}
	return blob, pt, nil
}

// ownRules reports whether any input rule of d comes from the Pad itself rather than an ancestor.
func ownRules(d policy.Decision, pad string) bool {
	for _, sr := range d.Obligations.Input {
		if sr.Source == pad && len(sr.Rules) > 0 {
			return true
		}
	}
	return false
}
