package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"gopkg.in/yaml.v3"
)

func init() {
	register(
		&command{name: "policy lint", args: "[--json] FILE", summary: "check a policy document: errors and warnings with line:column", run: runPolicyLint},
		&command{name: "policy explain", args: "--policy FILE[=PADID] [--policy …] --request FILE [--kind KIND] [--json]",
			summary: "decide a request against one Pad's policy or several ancestors' policies, and say why", run: runPolicyExplain},
	)
}

// lintReport is the --json output of policy lint.
type lintReport struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Error    *lintDiagnostic  `json:"error,omitempty"`
	Warnings []lintDiagnostic `json:"warnings"`
}

type lintDiagnostic struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func runPolicyLint(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	file := fs.Arg(0)
	data, err := readPolicyFile(file)
	if err != nil {
		return err
	}
	warnings, err := policy.Lint(data)
	rep := lintReport{File: file, Valid: err == nil, Warnings: []lintDiagnostic{}}
	for _, w := range warnings {
		rep.Warnings = append(rep.Warnings, lintDiagnostic{Line: w.Line, Column: w.Column, Field: w.Field, Message: w.Msg})
	}
	if err != nil {
		rep.Error = policyDiagnostic(err)
	}
	if *asJSON {
		if jerr := writePolicyJSON(e, rep); jerr != nil {
			return jerr
		}
	} else {
		for _, w := range rep.Warnings {
			fmt.Fprintf(e.stdout, "%s: warning: %s\n", policyLocation(file, w), w.Message)
		}
		if rep.Error == nil {
			fmt.Fprintf(e.stderr, "%s: valid policy, %d warning(s)\n", file, len(rep.Warnings))
		}
	}
	if rep.Error != nil {
		return fmt.Errorf("%s: %s", policyLocation(file, *rep.Error), rep.Error.Message)
	}
	return nil
}

func policyDiagnostic(err error) *lintDiagnostic {
	var se *policy.SyntaxError
	if errors.As(err, &se) {
		return &lintDiagnostic{Line: se.Line, Column: se.Column, Field: se.Field, Message: se.Msg}
	}
	return &lintDiagnostic{Message: err.Error()}
}

func policyLocation(file string, d lintDiagnostic) string {
	loc := file
	switch {
	case d.Line > 0 && d.Column > 0:
		loc = fmt.Sprintf("%s:%d:%d", file, d.Line, d.Column)
	case d.Line > 0:
		loc = fmt.Sprintf("%s:%d", file, d.Line) // a YAML syntax error has no column
	}
	if d.Field != "" {
		loc += ": " + d.Field
	}
	return loc
}

func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(&policyLimitedReader{f, policy.MaxDocumentSize + 1}); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return buf.Bytes(), nil
}

type policyLimitedReader struct {
	r interface{ Read([]byte) (int, error) }
	n int64
}

func (l *policyLimitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("file too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

func writePolicyJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// policyFileFlag collects a repeated flag.
type policyFileFlag []string

func (m *policyFileFlag) String() string     { return strings.Join(*m, ",") }
func (m *policyFileFlag) Set(s string) error { *m = append(*m, s); return nil }

var errPolicyDenied = errors.New("denied")

func runPolicyExplain(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var policies policyFileFlag
	fs.Var(&policies, "policy", "a policy `FILE[=PADID]` (repeat for every ancestor of a derived Pad; PADID defaults to the file name)")
	reqFile := fs.String("request", "", "the request `FILE` (YAML; see docs/policy.md)")
	kind := fs.String("kind", "", "the requested Pad is derived, of output `KIND` (model, aggregate, table, prediction, log); the policies are its ancestors")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if len(policies) == 0 || *reqFile == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	rf, err := loadRequest(*reqFile)
	if err != nil {
		return err
	}
	ch, err := buildChain(policies, rf, policy.Kind(*kind))
	if err != nil {
		return err
	}
	req, err := rf.request(ch.Pad.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", *reqFile, err)
	}
	if err := markRevoked(ch, rf.Revoked, req.Now); err != nil {
		return fmt.Errorf("%s: %w", *reqFile, err)
	}
	d := policy.NewEngine().Decide(ch, req)
	if *asJSON {
		if err := writePolicyJSON(e, d); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, d.Explain())
	}
	if !d.Allow {
		return errPolicyDenied
	}
	return nil
}

func buildChain(files []string, rf *requestFile, kind policy.Kind) (*policy.Chain, error) {
	ch := &policy.Chain{}
	derived := kind != "" || len(files) > 1
	if derived && kind == "" {
		return nil, errors.New("several policies describe the ancestors of a derived Pad: give its output kind with --kind")
	}
	for _, spec := range files {
		file, padID, _ := strings.Cut(spec, "=")
		if padID == "" {
			padID = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		}
		data, err := readPolicyFile(file)
		if err != nil {
			return nil, err
		}
		p, err := policy.Parse(data)
		if err != nil {
			if d := policyDiagnostic(err); d.Line > 0 {
				return nil, fmt.Errorf("%s: %s", policyLocation(file, *d), d.Message)
			}
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		src := policy.Source{Pad: policy.PadRef{ID: padID, Owner: p.Owner()}, Policy: p}
		if derived {
			path, err := rf.derivationPath(kind)
			if err != nil {
				return nil, err
			}
			src.Distance = len(path)
			src.FirstKinds, src.LaterKinds = path[:1], path[1:]
		}
		ch.Sources = append(ch.Sources, src)
	}
	if derived {
		ch.Pad = policy.PadRef{ID: rf.Pad, Kind: kind, Depth: ch.Sources[0].Distance}
		if ch.Pad.ID == "" {
			ch.Pad.ID = "derived"
		}
		if rf.Owner != "" {
			id, err := party.ParseID(rf.Owner)
			if err != nil {
				return nil, fmt.Errorf("request owner: %w", err)
			}
			ch.Pad.Owner = id
		}
	} else {
		ch.Pad = ch.Sources[0].Pad
	}
	return ch, nil
}

// derivationPath returns the kinds of the Pads from the sources' children down to the requested
// derived Pad of kind k: the request file's path, or, without one, depth steps (default 1) all of
// kind k.
func (rf *requestFile) derivationPath(k policy.Kind) ([]policy.Kind, error) {
	if len(rf.Path) == 0 {
		path := make([]policy.Kind, max(rf.Depth, 1))
		for i := range path {
			path[i] = k
		}
		return path, nil
	}
	switch {
	case len(rf.Path) > policy.MaxAncestors:
		return nil, fmt.Errorf("request path has %d steps, more than %d", len(rf.Path), policy.MaxAncestors)
	case rf.Depth != 0 && rf.Depth != len(rf.Path):
		return nil, fmt.Errorf("request depth %d does not match its path of %d steps", rf.Depth, len(rf.Path))
	case rf.Path[len(rf.Path)-1] != k:
		return nil, fmt.Errorf("request path ends with %q but --kind is %q", rf.Path[len(rf.Path)-1], k)
	}
	return rf.Path, nil
}

// requestFile is the YAML form of a policy request for `styx policy explain`.
type requestFile struct {
	Principal string            `yaml:"principal"`
	Action    string            `yaml:"action"`
	Pad       string            `yaml:"pad"`
	Owner     string            `yaml:"owner"`
	Depth     int               `yaml:"depth"`
	Path      []policy.Kind     `yaml:"path"` // kinds from the sources' children to the derived Pad
	Now       string            `yaml:"now"`
	Purpose   string            `yaml:"purpose"`
	Program   string            `yaml:"program"`
	Job       string            `yaml:"job"`
	TEE       requestTEE        `yaml:"tee"`
	Output    *requestOutput    `yaml:"output"`
	Uses      map[string]uint64 `yaml:"uses"`
	Revoked   []string          `yaml:"revoked"` // pad ids of sources to treat as revoked at "now"
}

type requestTEE struct {
	Type        string `yaml:"type"`
	Measurement string `yaml:"measurement"`
	Debug       bool   `yaml:"debug"`
	Simulated   bool   `yaml:"simulated"`
	TCB         uint64 `yaml:"tcb"`
}

type requestOutput struct {
	Kind        string   `yaml:"kind"`
	Bytes       int64    `yaml:"bytes"`
	Aggregation int64    `yaml:"aggregation"`
	Recipients  []string `yaml:"recipients"`
}

func loadRequest(path string) (*requestFile, error) {
	data, err := readPolicyFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rf requestFile
	if err := dec.Decode(&rf); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(strings.ReplaceAll(msg, "unmarshal errors:\n  ", ""), " in type main.requestFile", "")
		return nil, fmt.Errorf("%s: %s", path, strings.ReplaceAll(msg, "\n  ", "; "))
	}
	return &rf, nil
}

func (rf *requestFile) request(pad string) (*policy.Request, error) {
	principal, err := party.ParseID(rf.Principal)
	if err != nil {
		return nil, fmt.Errorf("principal: %w", err)
	}
	req := &policy.Request{Principal: principal, Action: policy.Action(rf.Action), Purpose: rf.Purpose,
		Program: rf.Program, Job: rf.Job, Now: time.Now().UTC(), Uses: policy.Uses{},
		TEE: policy.TEEClaims{Type: rf.TEE.Type, Measurement: rf.TEE.Measurement, Debug: rf.TEE.Debug, Simulated: rf.TEE.Simulated, TCB: rf.TEE.TCB}}
	if rf.Now != "" {
		if req.Now, err = time.Parse(time.RFC3339, rf.Now); err != nil {
			return nil, fmt.Errorf("now: want an RFC 3339 time: %w", err)
		}
	}
	if o := rf.Output; o != nil {
		req.Output = &policy.OutputClaim{Kind: policy.Kind(o.Kind), Bytes: o.Bytes, Aggregation: o.Aggregation}
		for _, r := range o.Recipients {
			id, err := party.ParseID(r)
			if err != nil {
				return nil, fmt.Errorf("output recipient: %w", err)
			}
			req.Output.Recipients = append(req.Output.Recipients, id)
		}
	}
	for k, n := range rf.Uses {
		action, who, _ := strings.Cut(k, "/")
		key := policy.CounterKey{Pad: pad, Action: policy.Action(action)}
		if who != "" {
			if key.Party, err = party.ParseID(who); err != nil {
				return nil, fmt.Errorf("uses %q: %w", k, err)
			}
		}
		req.Uses[key] = n
	}
	return req, nil
}

// markRevoked marks the named sources as revoked, to see what a revocation would do.
func markRevoked(ch *policy.Chain, ids []string, at time.Time) error {
	for _, id := range ids {
		found := false
		for i := range ch.Sources {
			if ch.Sources[i].Pad.ID == id {
				ch.Sources[i].RevokedAt, found = at, true
			}
		}
		if !found {
			return fmt.Errorf("revoked: no policy was given for pad %q", id)
		}
	}
	return nil
}
