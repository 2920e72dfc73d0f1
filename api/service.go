package api

import (
	"context"
	"io"

	"github.com/styx-tee/styx/party"
)

// Service is what a node puts on the network: the engine implements it. The server calls a
// method only after the request's signature, date, nonce and (for JSON bodies) body hash have
// been verified and the body decoded and validated; caller is the verified identity of the
// party that signed the request. Errors should wrap one of the sentinels (ErrDenied, …) or be
// an *Error; anything else is reported to the client as an opaque internal error and logged.
type Service interface {
	PadService
	ProgramService
	JobService
	ReleaseService
	LifecycleService
	AuditService
}

// PadService stores and lists sealed Pads.
type PadService interface {
	// UploadPad stores the sealed Pad read from body (size bytes, or -1 if unknown). body is
	// streamed from the network and returns ErrBodyHash (or another error) instead of io.EOF
	// when it does not match the signed hash: the service must read it to io.EOF and commit
	// nothing unless every read succeeded.
	UploadPad(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*PadInfo, error)
	ListPads(ctx context.Context, caller *party.Identity, req *ListPadsRequest) (*PadList, error)
	Pad(ctx context.Context, caller *party.Identity, id string) (*PadInfo, error)
}

// ProgramService stores WebAssembly modules by hash.
type ProgramService interface {
	// AddProgram stores the module read from body; the same streaming contract as UploadPad.
	AddProgram(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*ProgramInfo, error)
}

// JobService admits and runs jobs.
type JobService interface {
	// SubmitJob admits and queues a job. If spec.Wait, it returns when the job is final or ctx
	// is done (the server bounds it), with the status at that moment.
	SubmitJob(ctx context.Context, caller *party.Identity, spec *JobSpec) (*JobStatus, error)
	// ExplainJob evaluates admission without touching a key or a counter.
	ExplainJob(ctx context.Context, caller *party.Identity, spec *JobSpec) (*Explanation, error)
	// Job returns a job's status; with wait, once it is final or ctx is done.
	Job(ctx context.Context, caller *party.Identity, id string, wait bool) (*JobStatus, error)
}

// ReleaseService lets plaintext or answers leave the TEE under policy.
type ReleaseService interface {
	// Release returns the Pad's plaintext re-sealed as a new Pad to caller's identity (the
	// bytes of a Pad the caller opens with its key). Policy is checked before it returns; an
	// error after the first byte truncates the stream, which the Pad format detects.
	Release(ctx context.Context, caller *party.Identity, id string) (io.ReadCloser, error)
	// Query asks a model Pad one question; the answer is sealed to caller with SealAnswer.
	Query(ctx context.Context, caller *party.Identity, id string, q *QueryRequest) (*QueryResponse, error)
}

// LifecycleService applies owners' signed updates and revocations. The server has checked the
// statement's signature (Verify) and that its Pad matches the path; the service checks that
// the signer owns the Pad, and for updates that the version goes up.
type LifecycleService interface {
	UpdatePolicy(ctx context.Context, caller *party.Identity, u *SignedPolicyUpdate) (*PadInfo, error)
	Revoke(ctx context.Context, caller *party.Identity, rv *Revocation) (*RevokeResult, error)
}

// AuditService serves the transparency log, lineage and receipts.
type AuditService interface {
	Audit(ctx context.Context, caller *party.Identity, q *AuditQuery) (*AuditPage, error)
	// AuditHead returns the latest signed head and, if old > 0, a consistency proof from the
	// tree of size old.
	AuditHead(ctx context.Context, caller *party.Identity, old uint64) (*TreeHead, error)
	Lineage(ctx context.Context, caller *party.Identity, id string) (*Lineage, error)
	// Receipt returns a receipt's bytes (the audit package's encoding), at most MaxReceiptSize.
	Receipt(ctx context.Context, caller *party.Identity, id string) ([]byte, error)
}
