package node

import (
	"context"
	"errors"
	"testing"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
)

// A revocation without a reason is still a revocation: it succeeds, is logged, and is final.
func TestRevokeWithoutReason(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	k := newKey(t)
	c := n.client(t, k)
	policy := "version: 1\nowner: " + k.Identity().ID().String() + "\nrules: |\n  permit (principal, action, resource);\ntee: {allow_simulated: true}\n"
	p := upload(t, c, sealTo(t, k, n.Cluster.Identity(), policy, "text/csv", []byte("a\n1\n")))
	if _, err := c.Revoke(ctx, p.ID, ""); err != nil {
		t.Fatalf("revoke without a reason: %v", err)
	}
	if _, err := c.Revoke(ctx, p.ID, ""); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("second revocation: %v", err)
	}
	page, err := c.Audit(ctx, &api.AuditQuery{Pad: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	logged := false
	for _, e := range page.Entries {
		if ev, err := audit.ParseRecord(e.Record); err == nil && ev.Kind == audit.KindRevoke {
			logged = true
		}
	}
	if !logged {
		t.Fatal("the revocation is not in the log")
	}
}
