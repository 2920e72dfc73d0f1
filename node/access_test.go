package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
)

// TestReceiptAndLineageAccess checks that receipts and lineage follow the audit log's scope: the
// submitter and the owners of the inputs see a job's receipt, the owner of a Pad and the party a
// derived Pad was made for see its lineage, and anyone else is told exactly what it is told for
// an id that does not exist.
func TestReceiptAndLineageAccess(t *testing.T) {
	ctx := context.Background()
	w := newLifecycleWorld(t)
	w.add(t, "count")
	p := w.upload(t, w.h1k, w.h1, "", csvRows(5))
	st := waitJob(t, w.h2, &api.JobSpec{Program: w.count, Inputs: map[string]string{"in": p.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	mustDone(t, st)
	agg := st.Outputs["count"]

	// The input's owner and the submitter fetch the receipt; it names the input and the output.
	for name, c := range map[string]*api.Client{"input owner": w.h1, "submitter": w.h2} {
		b, err := c.Receipt(ctx, st.Receipt)
		if err != nil {
			t.Fatalf("%s: receipt %s: %v", name, st.Receipt, err)
		}
		r, err := audit.ParseReceipt(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Claims.Inputs) != 1 || r.Claims.Inputs[0].Pad != p.ID || len(r.Claims.Outputs) != 1 || r.Claims.Outputs[0].Pad != agg {
			t.Fatalf("%s: receipt claims %+v", name, r.Claims)
		}
	}
	// A stranger gets what it gets for an index past the end of the log: no oracle.
	head, err := w.clinic.AuditHead(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	past := fmt.Sprint(head.Size + 100)
	_, errPast := w.clinic.Receipt(ctx, past)
	_, errReal := w.clinic.Receipt(ctx, st.Receipt)
	if !errors.Is(errReal, api.ErrNotFound) || !errors.Is(errPast, api.ErrNotFound) ||
		strings.ReplaceAll(errPast.Error(), past, st.Receipt) != errReal.Error() {
		t.Fatalf("stranger: receipt %s: %v; index %s past the log: %v", st.Receipt, errReal, past, errPast)
	}
	// Nor may anyone walk the log by index: no index yields the stranger a receipt.
	for i := range head.Size {
		if _, err := w.clinic.Receipt(ctx, fmt.Sprint(i)); !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("stranger: receipt %d: %v", i, err)
		}
	}

	// Lineage: the owner sees its Pad's and the aggregate's; the submitter the aggregate's (made
	// for it) but not the input's; the stranger neither.
	for _, c := range []struct {
		name string
		c    *api.Client
		pad  string
		ok   bool
	}{
		{"owner, own Pad", w.h1, p.ID, true},
		{"owner, descendant", w.h1, agg, true},
		{"submitter, derived for it", w.h2, agg, true},
		{"submitter, someone else's input", w.h2, p.ID, false},
		{"stranger, input", w.clinic, p.ID, false},
		{"stranger, output", w.clinic, agg, false},
	} {
		lin, err := c.c.Lineage(ctx, c.pad)
		if c.ok {
			if err != nil || len(lin.Nodes) != 2 {
				t.Fatalf("%s: lineage of %s: %+v, %v", c.name, c.pad, lin, err)
			}
			continue
		}
		missing := otherID(c.pad)
		_, errMissing := c.c.Lineage(ctx, missing)
		if !errors.Is(err, api.ErrNotFound) || !errors.Is(errMissing, api.ErrNotFound) ||
			strings.ReplaceAll(errMissing.Error(), missing, c.pad) != err.Error() {
			t.Fatalf("%s: lineage of %s: %v; of a Pad that does not exist: %v", c.name, c.pad, err, errMissing)
		}
	}
}

// otherID returns an id of the same shape as id that names no Pad.
func otherID(id string) string {
	last := id[len(id)-1]
	repl := byte('a')
	if last == 'a' {
		repl = 'b'
	}
	return id[:len(id)-1] + string(repl)
}

// TestReceiptNamesEvaluatedPolicy updates a Pad's policy and runs a job: the receipt names the
// digest of the version the admission evaluated (v2), not the one in the Pad's header (v1).
func TestReceiptNamesEvaluatedPolicy(t *testing.T) {
	ctx := context.Background()
	w := newLifecycleWorld(t)
	w.add(t, "count")
	p := w.upload(t, w.h1k, w.h1, "", csvRows(5))
	v2 := w.policy(w.h1k, 2, "")
	if _, err := w.h1.UpdatePolicy(ctx, p.ID, []byte(v2)); err != nil {
		t.Fatal(err)
	}
	st := waitJob(t, w.h2, &api.JobSpec{Program: w.count, Inputs: map[string]string{"in": p.ID}, Purpose: "research",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	mustDone(t, st)
	b, err := w.h1.Receipt(ctx, st.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := audit.ParseReceipt(b)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(v2))
	if want := hex.EncodeToString(sum[:]); len(r.Claims.Inputs) != 1 || r.Claims.Inputs[0].Policy != want {
		t.Fatalf("receipt names input policies %+v, want %s (v2)", r.Claims.Inputs, want)
	}
}

// TestRevocationStopsReadsAtOnce revokes an input while a job reads it, with the watchdog's
// interval an hour: the per-read check notices the revocation on the job's next read.
func TestRevocationStopsReadsAtOnce(t *testing.T) {
	w := newLifecycleWorldRecheck(t, time.Hour)
	w.add(t, "slow")
	p := w.upload(t, w.h1k, w.h1, "", csvRows(20))
	id := w.startSlow(t, w.h2, p.ID)
	if _, err := w.h1.Revoke(context.Background(), p.ID, "withdrawn mid-read"); err != nil {
		t.Fatal(err)
	}
	st := w.wait(t, w.h2, id)
	w.mustAbort(t, st, w.h1, p.ID, "withdrawn mid-read")
	if !strings.Contains(fmtErr(st.Error), "noticed while the program read input in") {
		t.Fatalf("not aborted by the per-read check: %s", fmtErr(st.Error))
	}
}
