package cluster

import (
	"context"
	"fmt"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
)

// Dial is how a Go program starts talking to a node: it attests the node at server (Attest: a
// fresh nonce, the reference values, the TLS key the bundle came over) and returns an API client
// for key whose TLS accepts only the attested key, with what was attested. Any failure is an
// error and no client; a node whose key changes later fails every request with a *PinError.
func (c *Client) Dial(ctx context.Context, server string, key *party.Key) (*api.Client, *Attested, error) {
	a, err := c.Attest(ctx, server)
	if err != nil {
		return nil, nil, err
	}
	ac, err := a.NewAPIClient(key)
	if err != nil {
		return nil, nil, err
	}
	return ac, a, nil
}

// NewAPIClient returns an API client for key that talks to the attested server over TLS pinned
// to the attested key.
func (a *Attested) NewAPIClient(key *party.Key) (*api.Client, error) {
	ac, err := api.NewClient(api.ClientConfig{BaseURL: a.Server, Key: key, TLS: a.TLSConfig()})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return ac, nil
}
