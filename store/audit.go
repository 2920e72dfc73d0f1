package store

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

const (
	auditStream  = "STYX_AUDIT"
	auditSubject = "styx.audit"
	// MaxAuditEvent caps one message of the audit stream: one append of the transparency log
	// (larger appends are split). The embedded server's payload limit is 1 MiB.
	MaxAuditEvent = 960 << 10
)

// AuditStream is the stream that holds the transparency log (see AuditLog). It refuses deletes
// and purges and never ages messages out: a Merkle log cannot forget a record it has proved.
type AuditStream struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

func newAuditStream(ctx context.Context, js jetstream.JetStream) (*AuditStream, error) {
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        auditStream,
		Subjects:    []string{auditSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
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
