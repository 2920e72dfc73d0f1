package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

func TestEscrowRecovery(t *testing.T) {
	a, _ := Init(simConfig(t, goodMeasurement))
	holder, _ := party.Generate()
	e, err := a.Escrow(holder.Identity())
	if err != nil {
		t.Fatal(err)
	}
	// Every node is gone; a fresh one comes up and the holder re-admits it.
	nonce := NewNonce()
	j, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
	resp, err := RecoveryAdmit(e, holder, j.Request(), nonce, devRef(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := j.CompleteRecovery(resp, a.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if !n.Identity().Equal(a.Identity()) || n.StoreKey() != a.StoreKey() {
		t.Fatal("recovered node holds another key")
	}

	t.Run("other measurement", func(t *testing.T) {
		j, _ := NewJoiner(simConfig(t, otherMeasurement), nonce)
		if _, err := RecoveryAdmit(e, holder, j.Request(), nonce, devRef(), nil); !errors.Is(err, tee.ErrMeasurement) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("other holder", func(t *testing.T) {
		other, _ := party.Generate()
		j, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
		if _, err := RecoveryAdmit(e, other, j.Request(), nonce, devRef(), nil); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("expected another cluster", func(t *testing.T) {
		j, _ := NewJoiner(simConfig(t, goodMeasurement), nonce)
		resp, err := RecoveryAdmit(e, holder, j.Request(), nonce, devRef(), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Init(simConfig(t, goodMeasurement))
		if _, err := j.CompleteRecovery(resp, b.Identity()); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestRecoverFromEscrowFile: a node whose sealer does not survive the process (TDX's ephemeral
// sealer) escrows its key at creation, cannot open its sealed files after a restart, and comes
// back through the holder.
func TestRecoverFromEscrowFile(t *testing.T) {
	holder, _ := party.Generate()
	cfg := simConfig(t, goodMeasurement)
	cfg.Sealer = tee.NewEphemeralSealer()
	a, err := InitEscrowed(cfg, holder.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := InitEscrowed(cfg, holder.Identity()); err == nil {
		t.Fatal("second InitEscrowed accepted")
	}
	restart := cfg
	restart.Sealer = tee.NewEphemeralSealer()
	if _, err := Open(restart); !errors.Is(err, tee.ErrUnseal) {
		t.Fatalf("restart opened the sealed key with a new process key: %v", err)
	}

	other, _ := party.Generate()
	if _, err := Recover(context.Background(), restart, &LocalHolder{Key: other, Reference: devRef()}); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("another holder: %v", err)
	}
	strict := &tee.ReferenceValues{TEE: devRef().TEE}
	if _, err := Recover(context.Background(), restart, &LocalHolder{Key: holder, Reference: strict}); !errors.Is(err, tee.ErrSimulated) {
		t.Fatalf("holder whose reference values refuse the node: %v", err)
	}
	n, err := Recover(context.Background(), restart, &LocalHolder{Key: holder, Reference: devRef()})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Identity().Equal(a.Identity()) || n.StoreKey() != a.StoreKey() {
		t.Fatal("recovered node holds another key")
	}
	if _, err := Open(restart); err != nil {
		t.Fatalf("recovered key not sealed with the new process key: %v", err)
	}

	// The escrow file is untrusted: one naming another cluster does not open.
	b, _ := Init(simConfig(t, goodMeasurement))
	e, _ := LoadEscrow(filepath.Join(cfg.Dir, EscrowFile))
	e.Cluster = b.Identity().String()
	os.WriteFile(filepath.Join(cfg.Dir, EscrowFile), e.Marshal(), 0o600)
	if _, err := Recover(context.Background(), restart, &LocalHolder{Key: holder, Reference: devRef()}); err == nil || !strings.Contains(err.Error(), "open escrow") {
		t.Fatalf("escrow naming another cluster: %v", err)
	}
}
