package cluster

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/tdx"
	"github.com/styx-tee/styx/tee/tdx/tdxtest"
)

// A TDX cluster without hardware: quotes come from a faked configfs-tsm tree and are signed by
// a fake Intel chain that the verifier pins.
type tdxLab struct {
	mu       sync.Mutex // held while a TD sets its values on the shared signer
	signer   *tdxtest.Signer
	verifier tee.Verifier
	ref      *tee.ReferenceValues
}

var tdxEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func newTDXLab(t *testing.T) *tdxLab {
	s, err := tdxtest.NewSigner(tdxEpoch)
	if err != nil {
		t.Fatal(err)
	}
	s.MRTD[0] = 0x7d
	return &tdxLab{
		signer:   s,
		verifier: tee.Verifiers{tee.TDX: tdx.Verifier{Roots: s.Roots(), Now: func() time.Time { return tdxEpoch.AddDate(0, 6, 0) }}},
		ref: &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
			tee.TDX: {Measurements: []tee.Measurement{{"mrtd": "7d" + strings.Repeat("00", 47)}}},
		}},
	}
}

// config returns a node config for a TD on the lab's fake platform whose quotes claim mrtd0 as
// the first MRTD byte.
func (l *tdxLab) config(t *testing.T, mrtd0 byte, debug bool) Config {
	td := &tdxTD{lab: l, mrtd0: mrtd0, debug: debug}
	return Config{
		Dir:       filepath.Join(t.TempDir(), "node"),
		Attester:  td,
		Sealer:    tee.NewEphemeralSealer(),
		Reference: l.ref,
		Verifier:  l.verifier,
	}
}

// tdxTD is an attester for one TD on the lab's fake platform: it goes through the faked
// configfs-tsm tree with the TD's MRTD and debug bit set for the call.
type tdxTD struct {
	lab   *tdxLab
	mrtd0 byte
	debug bool
}

func (td *tdxTD) Type() tee.Type { return tee.TDX }

func (td *tdxTD) Evidence(rd [64]byte) (tee.Evidence, error) {
	td.lab.mu.Lock()
	defer td.lab.mu.Unlock()
	s := td.lab.signer
	s.MRTD[0], s.Debug = td.mrtd0, td.debug
	return tdx.NewAttesterClient(s.Configfs()).Evidence(rd)
}

func TestTDXCluster(t *testing.T) {
	lab := newTDXLab(t)
	a, err := Init(lab.config(t, 0x7d, false))
	if err != nil {
		t.Fatal(err)
	}
	nonce := NewNonce()
	b, err := a.Bundle(nonce)
	if err != nil {
		t.Fatal(err)
	}
	id, c, err := b.Verify(lab.ref, lab.verifier, nonce)
	if err != nil || !id.Equal(a.Identity()) || c.Type != tee.TDX || c.Simulated {
		t.Fatalf("tdx bundle: %v %+v", err, c)
	}
	// Intel's real root does not know the fake chain.
	if _, _, err := b.Verify(lab.ref, nil, nonce); !errors.Is(err, tee.ErrSignature) {
		t.Fatalf("real roots: %v", err)
	}

	// A TD with the same MRTD joins; one with another MRTD, or in debug mode, is refused.
	j, _ := NewJoiner(lab.config(t, 0x7d, false), nonce)
	resp, err := a.Admit(j.Request(), nonce)
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.Complete(resp)
	if err != nil || !n.Identity().Equal(a.Identity()) {
		t.Fatalf("join: %v", err)
	}
	for _, tc := range []struct {
		name  string
		mrtd0 byte
		debug bool
		want  error
	}{
		{"other mrtd", 0x7e, false, tee.ErrMeasurement},
		{"debug td", 0x7d, true, tee.ErrDebug},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := NewJoiner(lab.config(t, tc.mrtd0, tc.debug), nonce)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Admit(j.Request(), nonce); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// The attested channel works the same over TDX evidence.
	srv := serve(t, a)
	att, err := (&Client{Reference: lab.ref, Verifier: lab.verifier}).Attest(context.Background(), srv.URL)
	if err != nil || !att.Cluster.Equal(a.Identity()) {
		t.Fatalf("attest over tdx: %v", err)
	}
}
