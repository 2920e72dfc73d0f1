package tdx

import (
	"errors"
	"testing"
	"time"

	tdxtesting "github.com/google/go-tdx-guest/testing"

	"github.com/styx-tee/styx/tee"
)

// TestGoldenQuoteWithCollateral runs the real v4 quote through the collateral path with the
// Intel PCS responses go-tdx-guest ships (TCB info, QE identity, PCK and root CRLs), served
// locally. Those TCB levels are newer than the sample's TEE_TCB_SVN, so Intel's own data says
// the platform is not supported: refused with ErrTCB. Without collateral the same quote passes
// (TestGoldenQuotesVerify), which is the residual risk docs/attestation.md describes.
func TestGoldenQuoteWithCollateral(t *testing.T) {
	g := goldens()[0]
	ref, rd := refFor(t, g.quote)
	ev := tee.Evidence{Type: tee.TDX, Data: g.quote}
	v := g.verifier()
	v.Collateral = tdxtesting.TestGetter
	_, err := v.Verify(ev, ref, rd)
	wantErr(t, err, tee.ErrTCB, "no matching TCB level")

	// Collateral is checked for freshness too: long after it was issued, it is refused.
	v.Now = func() time.Time { return g.at.AddDate(1, 0, 0) }
	_, err = v.Verify(ev, ref, rd)
	if err == nil || errors.Is(err, tee.ErrTCB) {
		t.Fatalf("expired collateral: %v", err)
	}
	t.Log(err)
}
