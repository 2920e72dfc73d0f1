package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	auditStream  = "STYX_AUDIT"
	auditSubject = "styx.audit"
	// MaxAuditEvent caps one audit event.
	MaxAuditEvent = 256 << 10
)

// AuditStream is the append-only stream of audit events. The stream refuses
// deletes and purges; events leave it only through Config.AuditMaxAge. The
// audit package builds the Merkle log on top and signs tree heads inside the
// TEE, which is what makes tampering by the host detectable.
type AuditStream struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// AuditEvent is one stored event.
type AuditEvent struct {
	Seq  uint64
	Time time.Time
	Data []byte
}

func newAuditStream(ctx context.Context, js jetstream.JetStream, maxAge time.Duration) (*AuditStream, error) {
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        auditStream,
		Subjects:    []string{auditSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      maxAge,
		MaxMsgSize:  MaxAuditEvent,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
		Replicas:    1,
	})
	if err != nil {
		return nil, fmt.Errorf("store: create audit stream: %w", err)
	}
	return &AuditStream{js: js, stream: stream}, nil
}

// Audit returns the audit stream.
func (s *Store) Audit() *AuditStream { return s.audit }

// Append stores an event durably and returns its sequence number (1 for the
// first event, then consecutive).
func (a *AuditStream) Append(ctx context.Context, event []byte) (uint64, error) {
	if len(event) > MaxAuditEvent {
		return 0, fmt.Errorf("%w: audit event of %d bytes exceeds %d", ErrInvalid, len(event), MaxAuditEvent)
	}
	ack, err := a.js.Publish(ctx, auditSubject, event)
	if err != nil {
		return 0, fmt.Errorf("store: append audit event: %w", err)
	}
	return ack.Sequence, nil
}

// Last returns the sequence of the newest event, 0 if there is none.
func (a *AuditStream) Last(ctx context.Context) (uint64, error) {
	info, err := a.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: audit stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Read returns up to limit events starting at sequence from (1 for the
// beginning). Events aged out by AuditMaxAge are skipped.
func (a *AuditStream) Read(ctx context.Context, from uint64, limit int) ([]AuditEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: Read needs limit > 0", ErrInvalid)
	}
	info, err := a.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: audit stream info: %w", err)
	}
	from = max(from, info.State.FirstSeq, 1)
	var out []AuditEvent
	for seq := from; seq <= info.State.LastSeq && len(out) < limit; seq++ {
		m, err := a.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("store: read audit event %d: %w", seq, err)
		}
		out = append(out, AuditEvent{Seq: m.Sequence, Time: m.Time, Data: m.Data})
	}
	return out, nil
}
