package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"
)

// A Receipt proves to a party holding only the cluster's public key that the log recorded Claims:
// the logged record, its inclusion proof, and the signed head the proof leads to.
type Receipt struct {
	Claims Claims
	Index  int64            // the record's index in the log
	Record []byte           // the canonical record (an Event whose Receipt equals Claims)
	Proof  tlog.RecordProof // inclusion of Record at Index under Head
	Head   []byte           // the signed tree head (a signed note)
}

// MaxReceiptSize caps an encoded receipt.
const MaxReceiptSize = 1 << 20

const receiptVersion = 1

// wireReceipt is the JSON layout; field order is the canonical order.
type wireReceipt struct {
	V      int         `json:"v"`
	Claims Claims      `json:"claims"`
	Index  int64       `json:"index"`
	Record []byte      `json:"record"` // base64
	Proof  []tlog.Hash `json:"proof"`  // base64 each
	Head   string      `json:"head"`   // the signed note text
}

// Marshal returns the receipt's canonical JSON encoding.
func (r *Receipt) Marshal() ([]byte, error) {
	proof := r.Proof
	if proof == nil {
		proof = tlog.RecordProof{}
	}
	b, err := json.Marshal(wireReceipt{receiptVersion, r.Claims, r.Index, r.Record, proof, string(r.Head)})
	if err != nil {
		return nil, malformed("receipt", "%v", err)
	}
	if len(b) > MaxReceiptSize {
		return nil, malformed("receipt", "%d bytes, more than %d", len(b), MaxReceiptSize)
	}
	return b, nil
}

// ParseReceipt parses an encoded receipt strictly (size caps, no unknown fields, canonical form).
// It does not verify it: call Verify.
func ParseReceipt(b []byte) (*Receipt, error) {
	if len(b) > MaxReceiptSize {
		return nil, malformed("receipt", "%d bytes, more than %d", len(b), MaxReceiptSize)
	}
	var w wireReceipt
	if err := decodeStrict(b, &w); err != nil {
		return nil, malformed("receipt", "%v", err)
	}
	if w.V != receiptVersion {
		return nil, malformed("receipt", "version %d, want %d", w.V, receiptVersion)
	}
	r := &Receipt{Claims: w.Claims, Index: w.Index, Record: w.Record, Proof: w.Proof, Head: []byte(w.Head)}
	if err := r.checkShape(); err != nil {
		return nil, err
	}
	canon, err := r.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, malformed("receipt", "not in canonical form")
	}
	return r, nil
}

// checkShape applies the caps that do not need the key.
func (r *Receipt) checkShape() error {
	if err := r.Claims.Validate(); err != nil {
		return err
	}
	switch {
	case r.Index < 0:
		return malformed("receipt", "negative index")
	case len(r.Record) == 0 || len(r.Record) > MaxRecordSize:
		return malformed("receipt", "record of %d bytes", len(r.Record))
	case len(r.Proof) > maxProofLen:
		return malformed("receipt", "proof of %d hashes", len(r.Proof))
	case len(r.Head) == 0 || len(r.Head) > maxHeadSize:
		return malformed("receipt", "head of %d bytes", len(r.Head))
	}
	return nil
}

// Verify checks the receipt offline with the cluster's public key: the head's signature, the
// record's inclusion under it, and that the record is the event these Claims were logged as. It
// returns the verified head and event. Any mismatch is a *TamperError (ErrTampered) naming the
// field; a head signed by another key is ErrBadSignature.
func (r *Receipt) Verify(clusterPub ed25519.PublicKey) (*SignedHead, *Event, error) {
	if err := r.checkShape(); err != nil {
		return nil, nil, err
	}
	head, err := VerifyHead(r.Head, clusterPub)
	if err != nil {
		return nil, nil, err
	}
	if err := VerifyInclusion(head, r.Index, r.Record, r.Proof); err != nil {
		return nil, nil, err
	}
	ev, err := ParseRecord(r.Record)
	if err != nil {
		return nil, nil, tampered("record", "%v", err)
	}
	if err := r.Claims.matches(ev); err != nil {
		return nil, nil, err
	}
	return head, ev, nil
}

// matches checks that ev is the event c was logged as.
func (c *Claims) matches(ev *Event) error {
	if ev.Receipt == nil {
		return tampered("record", "the logged event carries no receipt claims")
	}
	if ev.Receipt.Kind != c.Kind {
		return tampered("claims.kind", "receipt says %q, log says %q", c.Kind, ev.Receipt.Kind)
	}
	if ev.Receipt.Job != c.Job {
		return tampered("claims.job", "receipt says %q, log says %q", clip(c.Job), clip(ev.Receipt.Job))
	}
	if !bytes.Equal(ev.Receipt.canonical(), c.canonical()) {
		return tampered("claims", "receipt claims differ from the logged ones: %s", diffClaims(c, ev.Receipt))
	}
	want, _ := c.Kind.eventKind()
	if ev.Kind != want || ev.Job != c.Job || !slices.Equal(ev.Pads, c.pads()) {
		return tampered("record", "event kind, job or pads do not match its receipt claims")
	}
	return nil
}

// diffClaims names the first differing field, for the error message.
func diffClaims(a, b *Claims) string {
	switch {
	case a.Program != b.Program:
		return "program"
	case !slices.Equal(a.Inputs, b.Inputs):
		return "inputs"
	case !slices.Equal(a.Outputs, b.Outputs):
		return "outputs"
	case a.Recipient != b.Recipient:
		return "recipient"
	case a.TEE != b.TEE:
		return "tee"
	}
	return "encoding"
}

// IssueReceipt logs c as a job.done or release event (with the given actor and details), signs a
// head covering it, and returns the receipt.
func (l *Log) IssueReceipt(ctx context.Context, c Claims, actor string, details map[string]string) (*Receipt, error) {
	e, err := l.logReceipt(ctx, c, actor, details)
	if err != nil {
		return nil, err
	}
	return l.receiptFor(ctx, e)
}

// LogReceipt logs c as a job.done or release event, just after the events before, in one
// durable write (a job's "use" event and its receipt, say): all of them are logged or none. It
// returns the receipt's index without signing a head: Receipt issues it, under a head signed
// then, when a party asks for it. An invalid event or claim fails before anything is written.
func (l *Log) LogReceipt(ctx context.Context, c Claims, actor string, details map[string]string, before ...Event) (int64, error) {
	e, err := l.logReceipt(ctx, c, actor, details, before...)
	if err != nil {
		return 0, err
	}
	return e.Index, nil
}

func (l *Log) logReceipt(ctx context.Context, c Claims, actor string, details map[string]string, before ...Event) (Entry, error) {
	if err := c.Validate(); err != nil {
		return Entry{}, err
	}
	kind, _ := c.Kind.eventKind()
	evs := append(slices.Clip(before), Event{Kind: kind, Actor: actor, Job: c.Job, Pads: c.pads(), Details: details, Receipt: &c})
	es, err := l.AppendBatch(ctx, evs)
	if err != nil {
		return Entry{}, err
	}
	return es[len(es)-1], nil
}

// Receipt returns a receipt for the receipt-carrying entry at index under a current signed head:
// how a party fetches (again) the receipt of an earlier job.
func (l *Log) Receipt(ctx context.Context, index int64) (*Receipt, error) {
	e, err := l.Read(index)
	if err != nil {
		return nil, err
	}
	if e.Event.Receipt == nil {
		return nil, fmt.Errorf("audit: entry %d (%s) carries no receipt: %w", index, e.Event.Kind, ErrNotFound)
	}
	return l.receiptFor(ctx, e)
}

func (l *Log) receiptFor(ctx context.Context, e Entry) (*Receipt, error) {
	head, err := l.SignHead(ctx)
	if err != nil {
		return nil, err
	}
	proof, err := l.ProveInclusion(e.Index, head.Size)
	if err != nil {
		return nil, err
	}
	return &Receipt{Claims: *e.Event.Receipt, Index: e.Index, Record: e.Record, Proof: proof, Head: head.Note}, nil
}
