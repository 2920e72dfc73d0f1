package cluster

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

// Client attests Styx nodes before anyone talks to them.
type Client struct {
	// Reference values the node must meet. Required.
	Reference *tee.ReferenceValues
	// Verifier checks evidence; nil means DefaultVerifier().
	Verifier tee.Verifier
	// Pins, if set, records the attested TLS key and cluster per server, and refuses a server
	// that now claims another cluster.
	Pins *PinStore
	// Timeout bounds the attestation request; zero means 30 seconds.
	Timeout time.Duration
}

// Attested is the outcome of a successful attestation.
type Attested struct {
	Server  string // canonical server URL (scheme://host[:port])
	Cluster *party.Identity
	Claims  *tee.Claims
	Bundle  *Bundle
	Pin     [32]byte // SHA-256 of the attested TLS key's SubjectPublicKeyInfo
}

// TLSConfig returns a client TLS configuration pinned to the attested key.
func (a *Attested) TLSConfig() *tls.Config { return PinnedTLSConfig(a.Pin) }

// Attest fetches the node's bundle with a fresh nonce over TLS, verifies it against the
// reference values, checks that the TLS connection it came over used the attested key, and
// records the pin. Any failure is an error; nothing is pinned then.
func (c *Client) Attest(ctx context.Context, server string) (*Attested, error) {
	base, err := CanonicalServer(server)
	if err != nil {
		return nil, err
	}
	nonce := NewNonce()
	body, spki, err := c.fetchRetry(ctx, base+AttestationPath+"?nonce="+hex.EncodeToString(nonce))
	if err != nil {
		return nil, err
	}
	b, err := ParseBundle(body)
	if err != nil {
		return nil, err
	}
	id, claims, err := b.Verify(c.Reference, c.Verifier, nonce)
	if err != nil {
		return nil, err
	}
	a := &Attested{Server: base, Cluster: id, Claims: claims, Bundle: b, Pin: KeyPin(b.TLSKey)}
	if got := KeyPin(spki); got != a.Pin {
		return nil, &PinError{Pinned: a.Pin, Got: got}
	}
	if c.Pins != nil {
		if err := c.Pins.Record(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Retries of an attestation the node's rate limit refused (429): at most maxBusyRetries, each
// after the node's Retry-After capped at maxBusyWait.
const (
	maxBusyRetries = 4
	maxBusyWait    = 5 * time.Second
)

// busyError is a 429 answer with the wait the node asked for.
type busyError struct{ wait time.Duration }

func (e *busyError) Error() string {
	return "cluster: fetch attestation: the node is rate-limiting attestation requests; retry later"
}

// fetchRetry is fetch, waiting and retrying while the node answers 429.
func (c *Client) fetchRetry(ctx context.Context, u string) ([]byte, []byte, error) {
	for i := 0; ; i++ {
		body, spki, err := c.fetch(ctx, u)
		var busy *busyError
		if !errors.As(err, &busy) || i == maxBusyRetries {
			return body, spki, err
		}
		t := time.NewTimer(min(max(busy.wait, 100*time.Millisecond), maxBusyWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
	}
}

// fetch GETs u over TLS without CA checks, returning the body and the server's key. The key is
// checked against the attested one by the caller.
func (c *Client) fetch(ctx context.Context, u string) ([]byte, []byte, error) {
	var (
		mu   sync.Mutex
		spki []byte
	)
	tr := &http.Transport{
		DisableKeepAlives: true,
		Proxy:             http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, // the key is checked against the attestation below
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return fmt.Errorf("server presented no certificate")
				}
				mu.Lock()
				spki = cs.PeerCertificates[0].RawSubjectPublicKeyInfo
				mu.Unlock()
				return nil
			},
		},
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	hc := &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // an attestation never redirects
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: fetch attestation: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, nil, &busyError{wait: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, nil, fmt.Errorf("cluster: fetch attestation: %s: %s", resp.Status, msg)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBundleSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: fetch attestation: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return body, spki, nil
}

// CanonicalServer reduces a server URL to scheme://host[:port]; only https is accepted.
func CanonicalServer(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("cluster: server url: %w", err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("cluster: server url %q: want https://host[:port]", server)
	}
	return "https://" + u.Host, nil
}
