package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"

	"github.com/styx-tee/styx/audit"
)

// The middleware logs a finished job and hands its receipt to the owners; an owner verifies it
// with nothing but the cluster's public key.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)

	// Inside the TEE.
	log, err := audit.Open(dir, audit.Options{Origin: "cluster.example/audit", Signer: audit.Ed25519Signer(priv)})
	if err != nil {
		panic(err)
	}
	defer log.Close()
	ctx := context.Background()
	log.Append(ctx, audit.Event{Kind: audit.KindAdmit, Job: "job-1", Pads: []string{"pad-a"}})
	receipt, err := log.IssueReceipt(ctx, audit.Claims{
		Kind:    audit.ReceiptJob,
		Job:     "job-1",
		Program: "sha256:1234",
		Inputs:  []audit.PadRef{{Pad: "pad-a", Policy: "sha256:aa"}},
		Outputs: []audit.PadRef{{Pad: "pad-b", Policy: "sha256:bb"}},
		TEE:     audit.TEEClaims{Type: "sim", Simulated: true},
	}, "styxid1consumer", nil)
	if err != nil {
		panic(err)
	}
	encoded, _ := receipt.Marshal()

	// At the owner's, offline.
	r, err := audit.ParseReceipt(encoded)
	if err != nil {
		panic(err)
	}
	head, ev, err := r.Verify(pub)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %s: entry %d of %d, simulated TEE %v\n", ev.Kind, ev.Job, r.Index, head.Size, r.Claims.TEE.Simulated)
	// Output: job.done job-1: entry 1 of 2, simulated TEE true
}
