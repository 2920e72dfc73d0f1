package api

import (
	"errors"
	"testing"
)

// TestNewClientNeedsTLS: a client without TLS configuration would trust the system roots (or
// plain http) instead of an attestation, so it is refused unless the caller opts out.
func TestNewClientNeedsTLS(t *testing.T) {
	for _, url := range []string{"https://127.0.0.1:7443", "http://127.0.0.1:7443"} {
		if _, err := NewClient(ClientConfig{BaseURL: url, Key: testKey(t, 0)}); !errors.Is(err, ErrUnattested) {
			t.Errorf("%s without TLS: %v", url, err)
		}
		if _, err := NewClient(ClientConfig{BaseURL: url, Key: testKey(t, 0), AllowUnattested: true}); err != nil {
			t.Errorf("%s with AllowUnattested: %v", url, err)
		}
	}
}
