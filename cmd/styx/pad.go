package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/styx-tee/styx/cluster"
	stpolicy "github.com/styx-tee/styx/policy"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(
		&command{name: "pad seal", args: "--key OWNER.key --policy FILE [--to IDENTITY …] [--to-file FILE …] [--pq] [-o OUT] [IN]",
			summary: "encrypt a file into a Pad bound to its policy", run: runPadSeal},
		&command{name: "pad open", args: "--key KEY.key [-o OUT] PAD",
			summary: "authenticate and decrypt a Pad sealed to you", run: runPadOpen},
		&command{name: "pad inspect", args: "[--json] PAD",
			summary: "show a Pad's header and check its signature, without any key", run: runPadInspect},
	)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func runPadSeal(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	keyPath := fs.String("key", "", "the owner's private key `FILE`: signs the Pad and is always a recipient")
	policyPath := fs.String("policy", "", "the sticky policy `FILE` (type from its extension: .yaml, .json, .cedar)")
	var to stringList
	fs.Var(&to, "to", "seal to this `IDENTITY` (styx1…) as well; repeatable")
	var toFiles stringList
	fs.Var(&toFiles, "to-file", "seal to every identity listed in `FILE`, one a line (# comments); repeatable")
	pq := fs.Bool("pq", false, "wrap the data key with the post-quantum hybrid ML-KEM-768+X25519")
	contentType := fs.String("content-type", pad.DefaultContentType, "media `TYPE` of the payload")
	out := fs.String("o", "", "write the Pad to `OUT` (default: stdout)")
	toCluster := fs.String("to-cluster", "", "seal to the Styx cluster whose attestation `BUNDLE` verifies (with --reference)")
	noOut := ""
	af := attestFlags{
		reference:      fs.String("reference", "", "reference values `FILE` the --to-cluster bundle must meet (see docs/attestation.md)"),
		allowSimulated: fs.Bool("allow-simulated", false, "accept a simulated cluster, which has no hardware protection (development only)"),
		out:            &noOut,
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if *policyPath == "" || fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	if *out == "" && isTerminal(e.stdout) {
		return errors.New("refusing to write a binary Pad to a terminal; use -o FILE or redirect stdout")
	}
	key, err := loadKey(*keyPath)
	if err != nil {
		return err
	}
	policy, err := readPolicy(*policyPath)
	if err != nil {
		return err
	}
	if err := lintPolicy(e, *policyPath, policy, key); err != nil {
		return err
	}
	recipients, err := parseRecipients(key, to, toFiles)
	if err != nil {
		return err
	}
	if *toCluster != "" {
		cl, err := verifyCluster(e, af, *toCluster)
		if err != nil {
			return err
		}
		recipients = append(recipients, cl)
		if len(recipients) > pad.MaxWraps {
			return fmt.Errorf("%d recipients (the owner and the cluster included); a Pad holds at most %d", len(recipients), pad.MaxWraps)
		}
	}
	in, size, cleanup, err := openSealInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer cleanup()
	opts := pad.SealOptions{
		Signer: key, Recipients: recipients, PQ: *pq,
		Policy: policy, PolicyType: policyType(*policyPath), ContentType: *contentType, Size: size,
	}
	if bar := newProgress(e.stderr, "sealing", size); bar != nil {
		opts.Progress = bar.update
		defer bar.done()
	}
	var h *pad.Header
	err = writeOutput(e, *out, 0o644, func(w io.Writer) error {
		h, err = pad.Seal(w, in, opts)
		return err
	})
	var pe *pad.Error
	if errors.As(err, &pe) {
		return pe.Err // the command name already says "pad seal"
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "sealed %s: %d bytes, policy sha256:%x, recipients: %d\n", h.ID, h.Size, h.PolicyDigest(), len(h.Wraps))
	if *out != "" && *out != "-" {
		fmt.Fprintln(e.stdout, h.ID)
	}
	return nil
}

// parseRecipients returns the owner followed by every --to identity and those in --to-file files.
func parseRecipients(owner *party.Key, to, files []string) ([]*party.Identity, error) {
	recipients := []*party.Identity{owner.Identity()}
	for _, s := range to {
		id, err := party.ParseIdentity(s)
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		recipients = append(recipients, id)
	}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--to-file: %w", err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			id, err := party.ParseIdentity(line)
			if err != nil {
				return nil, fmt.Errorf("--to-file %s line %d: %w", path, i+1, err)
			}
			recipients = append(recipients, id)
		}
	}
	if len(recipients) > pad.MaxWraps {
		return nil, fmt.Errorf("%d recipients (the owner included); a Pad holds at most %d", len(recipients), pad.MaxWraps)
	}
	return recipients, nil
}

// checkPolicy refuses an empty policy; lintPolicy then validates and lints a Styx policy.
func checkPolicy(path string, data []byte) error {
	if len(strings.TrimSpace(string(data))) == 0 {
		return fmt.Errorf("policy %s is empty: a Pad must carry a policy", path)
	}
	return nil
}

func readPolicy(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, pad.MaxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if len(data) > pad.MaxPolicySize {
		return nil, fmt.Errorf("policy %s is larger than %d bytes, the most a Pad carries", path, pad.MaxPolicySize)
	}
	return data, checkPolicy(path, data)
}

// policyType is the policy's media type: lintPolicy admits only Styx policies, which are YAML
// documents (JSON is YAML too); a .json file is labelled as JSON.
func policyType(path string) string {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return "application/styx-policy+json"
	}
	return "application/styx-policy+yaml"
}

// openSealInput opens the plaintext and learns its size, which the header needs before the first
// byte. A regular file is statted. Anything else (stdin, a pipe) is first spooled to a private
// temporary file, never buffered in memory; cleanup removes it.
func openSealInput(e *env, path string) (r io.Reader, size int64, cleanup func(), err error) {
	var src io.Reader = e.stdin
	cleanup = func() {}
	if (path == "" || path == "-") && isTerminal(e.stdin) {
		return nil, 0, nil, errors.New("no input: name a file to seal, or pipe the data in")
	}
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, 0, nil, err
		}
		if st.Mode().IsRegular() {
			return f, st.Size(), func() { f.Close() }, nil
		}
		src, cleanup = f, func() { f.Close() }
	}
	tmp, err := os.CreateTemp("", "styx-seal-*")
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spool input: %w", err)
	}
	closeSrc := cleanup
	done := func() { tmp.Close(); os.Remove(tmp.Name()); closeSrc() }
	n, err := io.Copy(tmp, src)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		done()
		return nil, 0, nil, fmt.Errorf("spool input: %w", err)
	}
	return tmp, n, done, nil
}

func runPadOpen(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	keyPath := fs.String("key", "", "your private key `FILE`")
	out := fs.String("o", "", "write the plaintext to `OUT`, only once all of it authenticated; '-' streams to stdout")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	key, err := loadKey(*keyPath)
	if err != nil {
		return err
	}
	in, closeIn, err := openInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	defer closeIn()
	h, r, err := pad.Open(in, key)
	if err != nil {
		return openErr(fs.Arg(0), err)
	}
	if *out == "" && h.Size > pad.ChunkSize {
		return fmt.Errorf("%s holds %d bytes, more than one chunk: a damaged chunk would be found only after earlier ones reached stdout, which cannot be taken back; use -o FILE, or -o - to stream anyway", h.ID, h.Size)
	}
	var bar *progress
	if *out != "" && *out != "-" {
		bar = newProgress(e.stderr, "opening", h.Size)
	}
	var written int64 // bytes that reached the output; for a file, its temporary file
	err = writeOutput(e, *out, 0o600, func(w io.Writer) error {
		if bar != nil {
			w = &countingWriter{w: w, bar: bar}
			defer bar.done()
		}
		var err error
		written, err = io.Copy(w, r)
		return err
	})
	if err != nil && (*out == "" || *out == "-") && written > 0 {
		return streamErr(fs.Arg(0), err, written)
	}
	if err != nil {
		return openErr(fs.Arg(0), err)
	}
	fmt.Fprintf(e.stderr, "opened %s: %d bytes, signed by %s, policy sha256:%x\n", h.ID, h.Size, h.Signer.ID(), h.PolicyDigest())
	return nil
}

// openErr turns a failure to open path into one line: what failed, and that nothing was written.
func openErr(path string, err error) error {
	var pe *pad.Error
	if errors.As(err, &pe) {
		err = pe.Err // the command name already says "pad open"
	}
	if errors.Is(err, pad.ErrTampered) || errors.Is(err, pad.ErrUnsupportedVersion) {
		return fmt.Errorf("%s: %w; nothing was written", path, err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// streamErr reports a failure after n authenticated bytes already went to stdout, which cannot be
// taken back: the reader must discard them.
func streamErr(path string, err error, n int64) error {
	var pe *pad.Error
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w; %d bytes were already written to stdout before the failure: discard them", path, err, n)
}

func openInput(e *env, path string) (io.Reader, func(), error) {
	if path == "-" {
		return e.stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// writeOutput runs write against the output: stdout for "" or "-", otherwise a temporary file
// next to path that is renamed to path only if write succeeds, so a failure leaves no file.
func writeOutput(e *env, path string, mode os.FileMode, write func(io.Writer) error) (err error) {
	if path == "" || path == "-" {
		return write(e.stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(mode); err != nil {
		return err
	}
	if err = write(tmp); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// lintPolicy validates the policy as a Styx policy document before it is sealed, whatever its file
// name: the engine evaluates nothing else, so any other policy would make a Pad no node accepts.
// It prints the document's lint warnings.
func lintPolicy(e *env, path string, data []byte, owner *party.Key) error {
	warnings, err := stpolicy.Lint(data)
	if err != nil {
		d := policyDiagnostic(err)
		msg := strings.Join(strings.Fields(d.Message), " ") // one line, whatever the parser said
		if d.Field != "" {
			msg = d.Field + ": " + msg
		}
		loc := policyLocation(path, lintDiagnostic{Line: d.Line, Column: d.Column})
		return fmt.Errorf("policy %s: not a valid Styx policy: %s", loc, msg)
	}
	if p, err := stpolicy.Parse(data); err == nil && p.Owner() != owner.Identity().ID() {
		return fmt.Errorf("policy %s names owner %s, but the Pad would be signed by %s; no node would accept it", path, p.Owner(), owner.Identity().ID())
	}
	for _, w := range warnings {
		fmt.Fprintf(e.stderr, "warning: %s:%s\n", path, w)
	}
	return nil
}

// verifyCluster verifies an attestation bundle offline against the reference values before
// anything is wrapped to the cluster it names.
func verifyCluster(e *env, af attestFlags, bundle string) (*party.Identity, error) {
	ref, err := af.load()
	if err != nil {
		return nil, fmt.Errorf("--to-cluster: %w", err)
	}
	id, claims, err := cluster.VerifyBundleFile(bundle, ref)
	if err != nil {
		return nil, fmt.Errorf("--to-cluster %s: %w", bundle, err)
	}
	fmt.Fprintf(e.stderr, "sealing to attested cluster %s (%s)\n", id.ID(), claims)
	if claims.Simulated {
		fmt.Fprintln(e.stderr, "WARNING: the cluster is SIMULATED: it has no hardware protection; never seal real data to it")
	}
	return id, nil
}
