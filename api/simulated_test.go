package api

import (
	"context"
	"testing"
)

// A node on the simulated TEE marks every answer, errors included, and the client notices.
func TestSimulatedNodeMarksAnswers(t *testing.T) {
	for _, sim := range []bool{false, true} {
		n := newTestNode(t, Config{Simulated: sim})
		c := n.client(t, 0)
		c.ListPads(context.Background(), &ListPadsRequest{})
		if c.Simulated() != sim {
			t.Fatalf("simulated node %v: client says %v", sim, c.Simulated())
		}
		c2 := n.client(t, 1)
		c2.Pad(context.Background(), "styxpad1nope")
		if c2.Simulated() != sim {
			t.Fatalf("simulated node %v, error answer: client says %v", sim, c2.Simulated())
		}
	}
}
