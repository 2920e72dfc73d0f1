package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// ClientConfig configures a Client. BaseURL and Key are required.
type ClientConfig struct {
	BaseURL string     // e.g. https://127.0.0.1:7443
	Key     *party.Key // signs every request; opens released Pads and query answers
	// TLS verifies the server: the configuration pinned to the node's attested TLS key
	// (cluster.Client.Dial builds the whole client; cluster.PinStore.TLSConfig gives the pin an
	// earlier attestation recorded). Required unless HTTPClient or AllowUnattested is set.
	TLS *tls.Config
	// AllowUnattested lets a nil TLS mean the system roots (https) or no TLS at all (http):
	// the server is then not checked against any attestation. Only for a node behind a proxy
	// the caller trusts otherwise, or tests; never for a node that holds real data.
	AllowUnattested bool
	// Audience is the server name to sign for. Empty: learned from the server's TLS
	// certificate on first use (AudienceForCert), which TLS has already verified.
	Audience string
	// HTTPClient overrides the transport entirely (tests). Its TLS settings then apply, and
	// the caller answers for them.
	HTTPClient *http.Client
	Retries    int              // extra attempts for idempotent GETs; default 2, negative none
	Now        func() time.Time // clock for Styx-Date; nil: time.Now
}

// A Client calls a Styx node. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	key     *party.Key
	hc      *http.Client
	retries int
	now     func() time.Time

	mu        sync.Mutex
	audience  string
	simulated bool
}

// Simulated reports whether any answer so far came from a node on the simulated TEE (it says
// so in every response). Such a node protects nothing: callers should say so to their users.
func (c *Client) Simulated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.simulated
}

// ErrUnattested reports a client configuration that would talk to a server no attestation
// vouches for: no TLS configuration, and AllowUnattested not set.
var ErrUnattested = errors.New("api: no TLS configuration: attest the node first (cluster.Client.Dial, or the pin of styx attest) " +
	"or set ClientConfig.AllowUnattested to trust the system roots or plain http")

// maxJSONResponse caps a JSON response a client reads.
const maxJSONResponse = 64 << 20

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("api: server URL %q: want https://HOST:PORT", cfg.BaseURL)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("api: server URL %q: want no path, query or user", cfg.BaseURL)
	}
	u.Path = ""
	if cfg.Key == nil {
		return nil, errors.New("api: ClientConfig.Key is nil")
	}
	if cfg.TLS == nil && cfg.HTTPClient == nil && !cfg.AllowUnattested {
		return nil, ErrUnattested
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = cfg.TLS
		tr.Proxy = nil // never hand a signed request to an environment proxy silently
		hc = &http.Client{Transport: tr}
	}
	hc2 := *hc
	hc2.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	retries := cfg.Retries
	if retries == 0 {
		retries = 2
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Client{base: u, key: cfg.Key, hc: &hc2, retries: max(retries, 0), now: now, audience: cfg.Audience}, nil
}

// Audience returns the audience the client signs for, learning it from the server's verified
// TLS certificate if it was not configured.
func (c *Client) Audience(ctx context.Context) (string, error) {
	c.mu.Lock()
	aud := c.audience
	c.mu.Unlock()
	if aud != "" {
		return aud, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/v1/health", nil), nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("api: contact server: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return "", errors.New("api: server is not on TLS; set ClientConfig.Audience to its name")
	}
	aud = AudienceForCert(resp.TLS.PeerCertificates[0])
	c.mu.Lock()
	c.audience = aud
	c.mu.Unlock()
	return aud, nil
}

func (c *Client) url(path string, q url.Values) string {
	u := *c.base
	u.Path = path
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one signed request. body is nil, or a seekable reader of size bytes whose hex
// SHA-256 is sum. Idempotent GETs are retried on transport errors and 502-504 with a fresh
// signature. A non-2xx response becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body io.ReadSeeker, size int64, sum, ctype string) (*http.Response, error) {
	aud, err := c.Audience(ctx)
	if err != nil {
		return nil, err
	}
	if body == nil {
		sum = EmptySHA256
	}
	attempts := 1
	if method == http.MethodGet {
		attempts += c.retries
	}
	var lastErr error
	for i := range attempts {
		if i > 0 {
			if err := sleep(ctx, time.Duration(i)*200*time.Millisecond); err != nil {
				return nil, err
			}
		}
		resp, err := c.send(ctx, method, path, q, body, size, sum, ctype, aud)
		if err == nil && resp.Header.Get(TEEHeader) == "simulated" {
			c.mu.Lock()
			c.simulated = true
			c.mu.Unlock()
		}
		if err == nil && !retryable(resp.StatusCode) {
			return resp, checkStatus(resp)
		}
		if err == nil {
			lastErr = checkStatus(resp)
		} else {
			lastErr = err
		}
	}
	return nil, lastErr
}

func (c *Client) send(ctx context.Context, method, path string, q url.Values, body io.ReadSeeker, size int64, sum, ctype, aud string) (*http.Response, error) {
	var rd io.Reader
	if body != nil && size > 0 {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("api: rewind request body: %w", err)
		}
		rd = io.NopCloser(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), rd)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if rd != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", ctype)
	}
	SignRequest(req, c.key, aud, sum, c.now())
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: %s %s: %w", method, path, err)
	}
	return resp, nil
}

func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// checkStatus turns a non-2xx response into an *Error and closes its body.
func checkStatus(resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return decodeError(resp.StatusCode, b)
}

// doJSON sends in (nil: no body) as JSON and decodes the response into out.
func (c *Client) doJSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.ReadSeeker
	var size int64
	var sum string
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("api: encode request: %w", err)
		}
		s := sha256.Sum256(b)
		body, size, sum = bytes.NewReader(b), int64(len(b)), hex.EncodeToString(s[:])
	}
	resp, err := c.do(ctx, method, path, q, body, size, sum, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeResponse(resp, out)
}

func decodeResponse(resp *http.Response, out any) error {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("api: response is %q, want JSON", ct)
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxJSONResponse))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("api: decode response: %w", err)
	}
	return nil
}

// hashSeeker returns the hex SHA-256 and size of r's contents from the start, and rewinds it.
func hashSeeker(r io.ReadSeeker) (string, int64, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", 0, fmt.Errorf("api: rewind: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", 0, fmt.Errorf("api: hash upload: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// idPath builds prefix/id/suffix after checking id, so it needs no escaping.
func idPath(prefix, id, suffix string) (string, error) {
	if err := ValidatePadID(id); err != nil {
		return "", err
	}
	return prefix + id + suffix, nil
}
