package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// UploadPad uploads a sealed Pad. It hashes r first (the hash is signed), then streams it.
func (c *Client) UploadPad(ctx context.Context, r io.ReadSeeker) (*PadInfo, error) {
	var info PadInfo
	return &info, c.upload(ctx, "/v1/pads", r, &info)
}

// AddProgram uploads a WebAssembly module; the returned SHA256 names it in jobs.
func (c *Client) AddProgram(ctx context.Context, r io.ReadSeeker) (*ProgramInfo, error) {
	var info ProgramInfo
	return &info, c.upload(ctx, "/v1/programs", r, &info)
}

func (c *Client) upload(ctx context.Context, path string, r io.ReadSeeker, out any) error {
	sum, size, err := hashSeeker(r)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, r, size, sum, "application/octet-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeResponse(resp, out)
}

// ListPads lists the Pads the caller may see, one page at a time.
func (c *Client) ListPads(ctx context.Context, req *ListPadsRequest) (*PadList, error) {
	q := url.Values{}
	if req != nil {
		setNonEmpty(q, "owner", req.Owner)
		setNonEmpty(q, "after", req.After)
		if req.Limit > 0 {
			q.Set("limit", strconv.Itoa(req.Limit))
		}
	}
	var out PadList
	return &out, c.doJSON(ctx, http.MethodGet, "/v1/pads", q, nil, &out)
}

// Pad describes one Pad.
func (c *Client) Pad(ctx context.Context, id string) (*PadInfo, error) {
	return getJSON[PadInfo](ctx, c, "/v1/pads/", id, "", nil)
}

// SubmitJob submits a job. With spec.Wait the server holds the response until the job ends
// or its wait bound passes; see WaitJob to wait longer.
func (c *Client) SubmitJob(ctx context.Context, spec *JobSpec) (*JobStatus, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out JobStatus
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/jobs", nil, spec, &out)
}

// ExplainJob asks for the decisions a job would meet, without running it.
func (c *Client) ExplainJob(ctx context.Context, spec *JobSpec) (*Explanation, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out Explanation
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/jobs/explain", nil, spec, &out)
}

// Job returns a job's status now.
func (c *Client) Job(ctx context.Context, id string) (*JobStatus, error) {
	return getJSON[JobStatus](ctx, c, "/v1/jobs/", id, "", nil)
}

// WaitJob returns a job's status once it is final, long-polling until ctx is done.
func (c *Client) WaitJob(ctx context.Context, id string) (*JobStatus, error) {
	for {
		st, err := getJSON[JobStatus](ctx, c, "/v1/jobs/", id, "", url.Values{"wait": {"true"}})
		if err != nil || st.State.Final() {
			return st, err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return st, err
		}
	}
}

// Release asks for a Pad's plaintext. The body is a Pad sealed to the caller's identity
// (open it with the pad package and the client's key); the caller must close it.
func (c *Client) Release(ctx context.Context, id string) (io.ReadCloser, error) {
	path, err := idPath("/v1/pads/", id, "/release")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil, nil, 0, "", "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Query asks a model Pad one question through the serving program (its sha256) and returns the
// decrypted answer.
func (c *Client) Query(ctx context.Context, id, program string, input []byte) ([]byte, error) {
	path, err := idPath("/v1/pads/", id, "/query")
	if err != nil {
		return nil, err
	}
	q := NewQueryRequest(input)
	q.Program = program
	var out QueryResponse
	if err := c.doJSON(ctx, http.MethodPost, path, nil, q, &out); err != nil {
		return nil, err
	}
	return out.Open(c.key, id, q)
}

// UpdatePolicy signs policy as the new policy of Pad id with the client's key and sends it.
func (c *Client) UpdatePolicy(ctx context.Context, id string, policy []byte) (*PadInfo, error) {
	return c.SendPolicyUpdate(ctx, SignPolicyUpdate(c.key, id, policy, c.now()))
}

// SendPolicyUpdate sends an update signed elsewhere (e.g. by an offline owner key).
func (c *Client) SendPolicyUpdate(ctx context.Context, u *SignedPolicyUpdate) (*PadInfo, error) {
	path, err := idPath("/v1/pads/", u.Pad, "/policy")
	if err != nil {
		return nil, err
	}
	var out PadInfo
	return &out, c.doJSON(ctx, http.MethodPut, path, nil, u, &out)
}

// Revoke signs a revocation of Pad id with the client's key and sends it.
func (c *Client) Revoke(ctx context.Context, id, reason string) (*RevokeResult, error) {
	return c.SendRevocation(ctx, SignRevocation(c.key, id, reason, c.now()))
}

// SendRevocation sends a revocation signed elsewhere.
func (c *Client) SendRevocation(ctx context.Context, rv *Revocation) (*RevokeResult, error) {
	path, err := idPath("/v1/pads/", rv.Pad, "/revoke")
	if err != nil {
		return nil, err
	}
	var out RevokeResult
	return &out, c.doJSON(ctx, http.MethodPost, path, nil, rv, &out)
}

// Audit reads one page of the audit log.
func (c *Client) Audit(ctx context.Context, aq *AuditQuery) (*AuditPage, error) {
	q := url.Values{}
	if aq != nil {
		setNonEmpty(q, "pad", aq.Pad)
		if aq.From > 0 {
			q.Set("from", strconv.FormatUint(aq.From, 10))
		}
		if aq.Limit > 0 {
			q.Set("limit", strconv.Itoa(aq.Limit))
		}
	}
	var out AuditPage
	return &out, c.doJSON(ctx, http.MethodGet, "/v1/audit", q, nil, &out)
}

// AuditHead returns the latest signed tree head and, if old > 0, a proof it extends the tree
// of size old.
func (c *Client) AuditHead(ctx context.Context, old uint64) (*TreeHead, error) {
	q := url.Values{}
	if old > 0 {
		q.Set("old", strconv.FormatUint(old, 10))
	}
	var out TreeHead
	return &out, c.doJSON(ctx, http.MethodGet, "/v1/audit/head", q, nil, &out)
}

// Lineage returns the derivation graph around a Pad.
func (c *Client) Lineage(ctx context.Context, id string) (*Lineage, error) {
	return getJSON[Lineage](ctx, c, "/v1/pads/", id, "/lineage", nil)
}

// Receipt returns a receipt's bytes.
func (c *Client) Receipt(ctx context.Context, id string) ([]byte, error) {
	path, err := idPath("/v1/receipts/", id, "")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil, 0, "", "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxReceiptSize+1))
	if err != nil {
		return nil, fmt.Errorf("api: read receipt: %w", err)
	}
	if len(b) > MaxReceiptSize {
		return nil, fmt.Errorf("api: receipt is over %d bytes", MaxReceiptSize)
	}
	return b, nil
}

// Attestation fetches the node's attestation for nonce (unauthenticated; verify it with the
// cluster package before trusting the node). It returns the raw response body.
func (c *Client) Attestation(ctx context.Context, nonce []byte) ([]byte, error) {
	q := url.Values{"nonce": {fmt.Sprintf("%x", nonce)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/attestation", q), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: attestation: %w", err)
	}
	if err := checkStatus(resp); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
}

func getJSON[T any](ctx context.Context, c *Client, prefix, id, suffix string, q url.Values) (*T, error) {
	path, err := idPath(prefix, id, suffix)
	if err != nil {
		return nil, err
	}
	var out T
	if err := c.doJSON(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func setNonEmpty(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}
