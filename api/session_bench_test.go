package api

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkSessionQuery measures one query of a query session through the client, TLS,
// HTTP/2 and the server, with a service that answers at once: what the API adds to a query
// (framing, MAC, replay check, answer sealing and opening, headers).
func BenchmarkSessionQuery(b *testing.B) {
	w := newSessionWorld(b, Config{})
	ctx := context.Background()
	s, err := w.client(b, 0).OpenQuerySession(ctx, w.pad, w.prog)
	if err != nil {
		b.Fatal(err)
	}
	input := []byte(strings.Repeat("radius,texture,perimeter,", 18) + "\n" + strings.Repeat("17.99,10.38,122.8,", 11) + "\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Query(ctx, input); err != nil {
			b.Fatal(err)
		}
	}
}
