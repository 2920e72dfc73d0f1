package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "audit", args: "[--pad PADID] [--from N] [--verify] [--json]", summary: "show audit events for your Pads; --verify checks the log against the last head you saw", run: runAudit},
		&command{name: "lineage", args: "[--dot|--json] PADID", summary: "show the derivation graph around a Pad, with each Pad's state", run: runLineage},
		&command{name: "receipt get", args: "[-o FILE] ID", summary: "fetch a receipt (verify it offline with styx receipt verify)", run: runReceiptGet},
	)
}

func runAudit(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	padID := fs.String("pad", "", "only events touching `PADID` and its descendants")
	from := fs.Uint64("from", 0, "start at log index `N`")
	verify := fs.Bool("verify", false, "verify the log's signed head and its consistency with the last head seen")
	headFile := fs.String("head", "", "where --verify keeps the last head seen (`FILE`; default in the user config dir)")
	return withClient(e, fs, args, &cf, 0, func(c *api.Client, _ *party.Key) error {
		if *verify {
			if err := verifyHead(ctx, e, c, &cf, *headFile); err != nil {
				return err
			}
		}
		q := &api.AuditQuery{Pad: *padID, From: *from}
		var entries []api.AuditEntry
		for {
			page, err := c.Audit(ctx, q)
			if err != nil {
				return err
			}
			entries = append(entries, page.Entries...)
			if page.Next == 0 || page.Next <= q.From {
				break
			}
			q.From = page.Next
		}
		if cf.json {
			return printJSON(e.stdout, entries)
		}
		for _, en := range entries {
			printEvent(e.stdout, en)
		}
		return nil
	})
}

func printEvent(w io.Writer, en api.AuditEntry) {
	ev, err := audit.ParseRecord(en.Record)
	if err != nil {
		fmt.Fprintf(w, "%6d  (unreadable record: %v)\n", en.Index, err)
		return
	}
	fmt.Fprintf(w, "%6d  %s  %-13s", en.Index, ev.Time.UTC().Format(time.RFC3339), ev.Kind)
	if ev.Actor != "" {
		fmt.Fprintf(w, "  by %s", ev.Actor)
	}
	if ev.Job != "" {
		fmt.Fprintf(w, "  job %s", ev.Job)
	}
	if len(ev.Pads) > 0 {
		fmt.Fprintf(w, "  pads %s", strings.Join(ev.Pads, ","))
	}
	fmt.Fprintln(w)
	for _, r := range ev.Reasons {
		fmt.Fprintf(w, "        %s\n", r)
	}
}

// verifyHead fetches the current signed head with a consistency proof from the last one saved
// for this server, checks the signer is the attested cluster, and saves the new head.
func verifyHead(ctx context.Context, e *env, c *api.Client, cf *clientFlags, path string) error {
	if cf.pinned == nil {
		return fmt.Errorf("--verify needs the server's attested cluster; run styx attest --server %s first", cf.server)
	}
	if path == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return fmt.Errorf("find config dir: %w (pass --head FILE)", err)
		}
		path = filepath.Join(dir, "styx", "heads", cf.pinned.Cluster.String()+".head")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	probe, err := c.AuditHead(ctx, 0)
	if err != nil {
		return err
	}
	signer, err := headSigner(ctx, c, probe)
	if err != nil {
		return err
	}
	if signer.ID() != cf.pinned.Cluster {
		return fmt.Errorf("audit head is signed by %s, not by the attested cluster %s", signer.ID(), cf.pinned.Cluster)
	}
	pub := signer.SigningKey()
	last, err := audit.LoadLastHead(path, pub)
	if err != nil {
		return err
	}
	th := probe
	var oldSize int64
	if last != nil && last.Size > 0 {
		oldSize = last.Size
		if th, err = c.AuditHead(ctx, uint64(last.Size)); err != nil {
			return err
		}
	}
	proof, err := treeProof(th.Proof)
	if err != nil {
		return err
	}
	head, err := audit.AdvanceHead(path, pub, th.Signed, proof)
	if err != nil {
		return fmt.Errorf("audit log verification FAILED: %w", err)
	}
	if oldSize == 0 {
		fmt.Fprintf(e.stderr, "audit log head verified: %d records (first head seen; saved to %s)\n", head.Size, path)
	} else {
		fmt.Fprintf(e.stderr, "audit log verified: %d records, consistent with the %d seen before\n", head.Size, oldSize)
	}
	return nil
}

// headSigner returns the full identity of the cluster key that signs tree heads: the one the
// head names, or else the one in the node's attestation bundle. Either way the caller checks
// its id (a hash of the whole identity) against the attested cluster, so neither source needs
// trusting.
func headSigner(ctx context.Context, c *api.Client, th *api.TreeHead) (*party.Identity, error) {
	s := th.Signer
	if s == "" {
		raw, err := c.Attestation(ctx, cluster.NewNonce())
		if err != nil {
			return nil, fmt.Errorf("fetch the cluster identity: %w", err)
		}
		b, err := cluster.ParseBundle(raw)
		if err != nil {
			return nil, err
		}
		s = b.Cluster
	}
	id, err := party.ParseIdentity(s)
	if err != nil {
		return nil, fmt.Errorf("audit head signer: %w", err)
	}
	return id, nil
}

func treeProof(p [][]byte) (tlog.TreeProof, error) {
	out := make(tlog.TreeProof, len(p))
	for i, h := range p {
		if len(h) != tlog.HashSize {
			return nil, errors.New("audit head: consistency proof hash of the wrong size")
		}
		copy(out[i][:], h)
	}
	return out, nil
}

func runLineage(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, true)
	dot := fs.Bool("dot", false, "print a Graphviz graph")
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		l, err := c.Lineage(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		switch {
		case cf.json:
			return printJSON(e.stdout, l)
		case *dot:
			printDot(e.stdout, l)
		default:
			printLineage(e.stdout, l)
		}
		return nil
	})
}

// printLineage prints each Pad with its state and parents, the root first.
func printLineage(w io.Writer, l *api.Lineage) {
	nodes := append([]api.LineageNode(nil), l.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Pad == l.Root && nodes[j].Pad != l.Root })
	for _, n := range nodes {
		mark := " "
		if n.Pad == l.Root {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %s  %s", mark, n.Pad, n.State)
		if n.Kind != "" {
			fmt.Fprintf(w, "  %s", n.Kind)
		}
		if n.Job != "" {
			fmt.Fprintf(w, "  from job %s", n.Job)
		}
		fmt.Fprintln(w)
		for _, p := range n.Parents {
			fmt.Fprintf(w, "    ← %s\n", p)
		}
	}
}

// printDot prints the lineage as a Graphviz digraph, edges from parent to child.
func printDot(w io.Writer, l *api.Lineage) {
	fmt.Fprintln(w, "digraph lineage {")
	fmt.Fprintln(w, "  rankdir=LR;")
	for _, n := range l.Nodes {
		style := ""
		switch n.State {
		case api.PadRevoked, api.PadDeleted:
			style = ", style=dashed, color=red"
		case api.PadExpired:
			style = ", style=dashed"
		}
		if n.Pad == l.Root {
			style += ", penwidth=2"
		}
		fmt.Fprintf(w, "  %q [label=%q%s];\n", n.Pad, n.Pad+"\n"+string(n.State), style)
	}
	for _, n := range l.Nodes {
		for _, p := range n.Parents {
			fmt.Fprintf(w, "  %q -> %q;\n", p, n.Pad)
		}
	}
	fmt.Fprintln(w, "}")
}

func runReceiptGet(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var cf clientFlags
	cf.define(e, fs, false)
	out := fs.String("o", "", "write the receipt to `FILE`; default stdout")
	return withClient(e, fs, args, &cf, 1, func(c *api.Client, _ *party.Key) error {
		b, err := c.Receipt(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		if *out != "" {
			return os.WriteFile(*out, b, 0o644)
		}
		_, err = e.stdout.Write(b)
		return err
	})
}
