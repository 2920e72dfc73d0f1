package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/styx-tee/styx/pad"
)

func runPadInspect(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "print the header as JSON")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	in, closeIn, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer closeIn()
	h, err := pad.Inspect(in)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	printHeader(e.stdout, h)
	return nil
}

// printHeader prints the view of a Pad before decryption: everything in the header, nothing of
// the data.
func printHeader(w io.Writer, h *pad.Header) {
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "%-11s %s\n", k, fmt.Sprintf(format, args...)) }
	row("pad", "%s", h.ID)
	row("format", "version %d, %d KiB chunks, header %d bytes", pad.Version, pad.ChunkSize>>10, len(h.Bytes()))
	if h.Derived() {
		row("signer", "%s (derived by this cluster)", h.Signer.ID())
	} else {
		row("signer", "%s (owner)", h.Signer.ID())
	}
	row("signature", "verified")
	row("mac", "not verified: it needs the data key and is checked when the pad is opened")
	row("created", "%s", h.CreatedAt.Format("2006-01-02 15:04:05 UTC"))
	row("content", "%s, %d bytes", h.ContentType, h.Size)
	row("policy", "%s, %d bytes, sha256:%x", h.PolicyType, len(h.Policy), h.PolicyDigest())
	if len(h.Parents) == 0 {
		row("parents", "none (a fresh pad)")
	} else {
		row("parents", "%d", len(h.Parents))
		for _, p := range h.Parents {
			fmt.Fprintf(w, "  %s policy sha256:%x\n", p.ID, p.PolicyDigest)
		}
	}
	if len(h.Wraps) == 0 {
		row("recipients", "none (the data key is held by the cluster)")
	} else {
		row("recipients", "%d", len(h.Wraps))
		for _, wr := range h.Wraps {
			note := ""
			if wr.Recipient == h.Signer.ID() {
				note = " (signer)"
			}
			fmt.Fprintf(w, "  %s %s%s\n", wr.Recipient, pad.KEMName(wr.KEM), note)
		}
	}
	if printable(h.Policy) {
		fmt.Fprintln(w, "policy text:")
		for _, line := range strings.Split(strings.TrimRight(string(h.Policy), "\n"), "\n") {
			fmt.Fprintln(w, "  "+line)
		}
	} else {
		fmt.Fprintln(w, "policy text: (binary; see --json)")
	}
}

// printable reports whether b is UTF-8 text without control characters other than tab and
// newline, so that printing it cannot play tricks on a terminal.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
