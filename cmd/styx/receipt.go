package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/tee"
)

func init() {
	register(&command{name: "receipt verify", args: "--cluster BUNDLE (--reference FILE | --allow-simulated) [--json] FILE",
		summary: "verify a job or release receipt offline against the cluster's attestation bundle", run: runReceiptVerify})
}

// runReceiptVerify verifies a receipt with nothing but the cluster's attestation bundle: the
// bundle against the reference values (which yields the cluster's signing key), the receipt's
// signed tree head with that key, the logged record's inclusion under the head, the claims
// against the record, and the claimed TEE against the attested one.
func runReceiptVerify(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	bundle := fs.String("cluster", "", "the cluster's attestation bundle `FILE` (from styx attest --bundle)")
	reference := fs.String("reference", "", "reference values `FILE` (JSON) the bundle must meet")
	allowSim := fs.Bool("allow-simulated", false, "accept a simulated cluster, which has no hardware protection (development only)")
	asJSON := fs.Bool("json", false, "print the verified claims as JSON")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *bundle == "" || fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	ref, err := receiptReference(*reference, *allowSim)
	if err != nil {
		return err
	}
	id, attested, err := cluster.VerifyBundleFile(*bundle, ref)
	if err != nil {
		return fmt.Errorf("cluster bundle: %w", err)
	}
	raw, err := readReceipt(fs.Arg(0))
	if err != nil {
		return err
	}
	r, err := audit.ParseReceipt(raw)
	if err != nil {
		return fmt.Errorf("receipt %s: %w", fs.Arg(0), err)
	}
	head, _, err := r.Verify(id.SigningKey())
	if err != nil {
		return fmt.Errorf("receipt %s does NOT verify against cluster %s: %w", fs.Arg(0), id.ID(), err)
	}
	if err := checkReceiptTEE(r.Claims.TEE, attested, ref); err != nil {
		return fmt.Errorf("receipt %s: %w", fs.Arg(0), err)
	}
	if *asJSON {
		return printJSON(e.stdout, r.Claims)
	}
	printReceipt(e.stdout, r, head)
	fmt.Fprintf(e.stderr, "receipt verified offline against cluster %s\n", id.ID())
	if r.Claims.TEE.Simulated {
		fmt.Fprintln(e.stderr, "WARNING: the job ran on a SIMULATED TEE: the receipt proves what the log says, not that hardware protected the data")
	}
	return nil
}

// receiptReference loads the reference values; --allow-simulated alone accepts any simulated
// cluster (and nothing else), which is what a development node's receipts need.
func receiptReference(path string, allowSim bool) (*tee.ReferenceValues, error) {
	if path == "" {
		if !allowSim {
			return nil, errors.New("no reference values given; pass --reference FILE (or --allow-simulated for a development node)")
		}
		return &tee.ReferenceValues{AllowSimulated: true}, nil
	}
	ref, err := tee.LoadReferenceValues(path)
	if err != nil {
		return nil, err
	}
	if allowSim {
		ref.AllowSimulated = true
	}
	return ref, nil
}

func readReceipt(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, audit.MaxReceiptSize+1))
	if err != nil {
		return nil, fmt.Errorf("receipt %s: %w", path, err)
	}
	if len(b) > audit.MaxReceiptSize {
		return nil, fmt.Errorf("receipt %s: more than %d bytes", path, audit.MaxReceiptSize)
	}
	return b, nil
}

// checkReceiptTEE checks that the TEE the receipt names is the attested one: the same type,
// measurement and simulation flag. A receipt claiming hardware the bundle does not attest, or
// other code, is refused.
func checkReceiptTEE(c audit.TEEClaims, attested *tee.Claims, ref *tee.ReferenceValues) error {
	if c.Simulated && !ref.AllowSimulated {
		return errors.New("the job ran on a simulated TEE; pass --allow-simulated to accept it (development only)")
	}
	return c.Attested(string(attested.Type), attested.Measurement, attested.Simulated)
}

func printReceipt(w io.Writer, r *audit.Receipt, head *audit.SignedHead) {
	c := r.Claims
	fmt.Fprintf(w, "%s receipt for job %s\n", c.Kind, c.Job)
	if c.Program != "" {
		fmt.Fprintf(w, "  program    %s\n", c.Program)
	}
	for _, in := range c.Inputs {
		fmt.Fprintf(w, "  input      %s  policy %s\n", in.Pad, in.Policy)
	}
	for _, out := range c.Outputs {
		fmt.Fprintf(w, "  output     %s  policy %s\n", out.Pad, out.Policy)
	}
	if c.Recipient != "" {
		fmt.Fprintf(w, "  recipient  %s\n", c.Recipient)
	}
	sim := ""
	if c.TEE.Simulated {
		sim = " (SIMULATED)"
	}
	fmt.Fprintf(w, "  tee        %s %s%s\n", c.TEE.Type, c.TEE.Measurement, sim)
	fmt.Fprintf(w, "  log entry  %d, included in the signed head of %d records at %s\n", r.Index, head.Size, head.Time.UTC().Format(time.RFC3339))
}
