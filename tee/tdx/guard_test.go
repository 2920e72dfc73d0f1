package tdx

import (
	"errors"
	"testing"

	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/styx-tee/styx/tee"
)

// panickyBody is a quote body whose getters index out of range, as a parser bug on hostile
// bytes would.
type panickyBody struct{ *pb.TDQuoteBody }

func (panickyBody) GetRtmrs() [][]byte { return [][]byte{}[1:] }

// TestClaimsGuarded: reading claims from a parsed body runs under tee.Guard, so a panic there
// is malformed evidence, not a crashed node.
func TestClaimsGuarded(t *testing.T) {
	c, err := guardedClaims(panickyBody{&pb.TDQuoteBody{}})
	var ve *tee.VerifyError
	if c != nil || !errors.Is(err, tee.ErrMalformed) || !errors.As(err, &ve) || ve.Type != tee.TDX {
		t.Fatalf("got %v, %v; want malformed tdx evidence", c, err)
	}
}
