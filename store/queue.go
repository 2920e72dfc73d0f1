package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	jobStream   = "STYX_JOBS"
	jobSubject  = "styx.jobs"
	jobConsumer = "styx-workers"
	jobIDHeader = "Styx-Job-Id"
	// MaxJobSpec caps a job message. Job specs reference Pads and
	// programs by id; they are small.
	MaxJobSpec = 64 << 10
)

// Queue is the work queue of jobs. Each published job is delivered to one
// worker at a time; a worker acknowledges it when done, or naks it to have
// it delivered again later. Every node's workers pull from the same durable
// consumer, so the same code spreads jobs across a cluster.
type Queue struct {
	js       jetstream.JetStream
	consumer jetstream.Consumer
}

func newQueue(ctx context.Context, js jetstream.JetStream, maxDeliver int, ackWait time.Duration) (*Queue, error) {
	if maxDeliver == 0 {
		maxDeliver = 5
	}
	if ackWait == 0 {
		ackWait = time.Minute
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       jobStream,
		Subjects:   []string{jobSubject},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		MaxMsgSize: MaxJobSpec,
		Duplicates: 10 * time.Minute,
		Replicas:   1,
	})
	if err != nil {
		return nil, fmt.Errorf("store: create job stream: %w", err)
	}
	c, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:    jobConsumer,
		AckPolicy:  jetstream.AckExplicitPolicy,
		AckWait:    ackWait,
		MaxDeliver: maxDeliver,
	})
	if err != nil {
		return nil, fmt.Errorf("store: create job consumer: %w", err)
	}
	return &Queue{js: js, consumer: c}, nil
}

// Jobs returns the job work queue.
func (s *Store) Jobs() *Queue { return s.jobs }

// Publish enqueues a job. id must be a valid key; publishing the same id
// again within ten minutes is deduplicated. It returns the stream sequence.
func (q *Queue) Publish(ctx context.Context, id string, spec []byte) (uint64, error) {
	if err := checkKeyName(id); err != nil {
		return 0, err
	}
	if len(spec) > MaxJobSpec {
		return 0, fmt.Errorf("%w: job spec of %d bytes exceeds %d", ErrInvalid, len(spec), MaxJobSpec)
	}
	msg := &nats.Msg{Subject: jobSubject, Header: nats.Header{}, Data: spec}
	msg.Header.Set(jobIDHeader, id)
	ack, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		return 0, fmt.Errorf("store: publish job %s: %w", id, err)
	}
	return ack.Sequence, nil
}

// Fetch waits up to wait for at most limit jobs and returns those it got
// (possibly none). It returns early, with ctx's error, if ctx ends.
func (q *Queue) Fetch(ctx context.Context, limit int, wait time.Duration) ([]*Job, error) {
	if limit <= 0 || wait <= 0 {
		return nil, fmt.Errorf("%w: Fetch needs limit > 0 and wait > 0", ErrInvalid)
	}
	fctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	batch, err := q.consumer.Fetch(limit, jetstream.FetchContext(fctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("store: fetch jobs: %w", err)
	}
	var jobs []*Job
	for m := range batch.Messages() {
		jobs = append(jobs, newJob(m))
	}
	if ctx.Err() != nil && len(jobs) == 0 {
		return nil, ctx.Err()
	}
	err = batch.Error()
	if err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		return jobs, fmt.Errorf("store: fetch jobs: %w", err)
	}
	return jobs, nil
}

// Job is one delivery of a queued job.
type Job struct {
	ID        string
	Spec      []byte
	Delivered uint64 // 1 on first delivery
	Seq       uint64 // stream sequence, stable across deliveries
	msg       jetstream.Msg
}

func newJob(m jetstream.Msg) *Job {
	j := &Job{ID: m.Headers().Get(jobIDHeader), Spec: m.Data(), msg: m}
	if md, err := m.Metadata(); err == nil {
		j.Delivered, j.Seq = md.NumDelivered, md.Sequence.Stream
	}
	return j
}

// Ack marks the job done and removes it from the queue. It waits for the
// server to confirm, so a crash after Ack returns never redelivers the job.
func (j *Job) Ack(ctx context.Context) error {
	if err := j.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("store: ack job %s: %w", j.ID, err)
	}
	return nil
}

// Nak hands the job back for redelivery after delay (counting towards the
// maximum number of deliveries).
func (j *Job) Nak(delay time.Duration) error {
	if err := j.msg.NakWithDelay(delay); err != nil {
		return fmt.Errorf("store: nak job %s: %w", j.ID, err)
	}
	return nil
}

// InProgress tells the queue the worker is still on the job, resetting the
// redelivery timer. Long jobs call it periodically.
func (j *Job) InProgress() error {
	if err := j.msg.InProgress(); err != nil {
		return fmt.Errorf("store: job %s in progress: %w", j.ID, err)
	}
	return nil
}

// Term gives up on the job for good: it is never delivered again.
func (j *Job) Term(reason string) error {
	if err := j.msg.TermWithReason(reason); err != nil {
		return fmt.Errorf("store: terminate job %s: %w", j.ID, err)
	}
	return nil
}
