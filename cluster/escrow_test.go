package cluster

import (
	"errors"
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
