package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestClientRoundTrip(t *testing.T) {
	n := newTestNode(t, Config{})
	ctx := context.Background()
	alice, bob := n.client(t, 0), n.client(t, 1)

	info, err := alice.UploadPad(ctx, bytes.NewReader([]byte("sealed pad bytes")))
	if err != nil {
		t.Fatal(err)
	}
	if info.Owner != testKey(t, 0).Identity().ID().String() || info.Size != 16 {
		t.Fatalf("upload: %+v", info)
	}
	list, err := bob.ListPads(ctx, nil)
	if err != nil || len(list.Pads) != 1 || list.Pads[0].ID != info.ID {
		t.Fatalf("list: %+v, %v", list, err)
	}
	got, err := bob.Pad(ctx, info.ID)
	if err != nil || got.ID != info.ID || !got.Created.Equal(info.Created) {
		t.Fatalf("pad: %+v, %v", got, err)
	}

	prog, err := bob.AddProgram(ctx, bytes.NewReader([]byte("\x00asm\x01\x00\x00\x00")))
	if err != nil || prog.SHA256 != sha256Hex([]byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("program: %+v, %v", prog, err)
	}
	spec := &JobSpec{Program: prog.SHA256, Inputs: map[string]string{"data": info.ID}, Purpose: "research",
		Outputs: []OutputSpec{{"model", "model"}}, Params: json.RawMessage(`{"epochs":3}`)}
	ex, err := bob.ExplainJob(ctx, spec)
	if err != nil || !ex.Allowed || len(ex.Decisions) != 1 || ex.Decisions[0].Pad != info.ID {
		t.Fatalf("explain: %+v, %v", ex, err)
	}
	st, err := bob.SubmitJob(ctx, spec)
	if err != nil || st.State != JobQueued || string(st.Spec.Params) != `{"epochs":3}` {
		t.Fatalf("submit: %+v, %v", st, err)
	}
	if st2, err := bob.Job(ctx, st.ID); err != nil || st2.State != JobQueued {
		t.Fatalf("job: %+v, %v", st2, err)
	}
	if st3, err := bob.WaitJob(ctx, st.ID); err != nil || st3.State != JobDone {
		t.Fatalf("wait: %+v, %v", st3, err)
	}

	rc, err := alice.Release(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "sealed pad bytes" {
		t.Fatalf("release: %q", b)
	}
	ans, err := alice.Query(ctx, info.ID, "", []byte("is it benign?"))
	if err != nil || string(ans) != "IS IT BENIGN?" {
		t.Fatalf("query: %q, %v", ans, err)
	}
	up, err := alice.UpdatePolicy(ctx, info.ID, []byte("version: 2\n"))
	if err != nil || up.PolicyVersion != 2 {
		t.Fatalf("update: %+v, %v", up, err)
	}
	page, err := alice.Audit(ctx, &AuditQuery{Pad: info.ID, From: 7})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Index != 7 || !bytes.Contains(page.Entries[0].Record, []byte(info.ID)) {
		t.Fatalf("audit: %+v, %v", page, err)
	}
	head, err := alice.AuditHead(ctx, 5)
	if err != nil || head.Size != 6 || len(head.Proof) != 1 {
		t.Fatalf("head: %+v, %v", head, err)
	}
	lin, err := alice.Lineage(ctx, info.ID)
	if err != nil || lin.Root != info.ID {
		t.Fatalf("lineage: %+v, %v", lin, err)
	}
	rec, err := alice.Receipt(ctx, "r-1")
	if err != nil || string(rec) != `{"receipt":"r-1"}` {
		t.Fatalf("receipt: %q, %v", rec, err)
	}
	rv, err := alice.Revoke(ctx, info.ID, "study over")
	if err != nil || rv.Pad != info.ID {
		t.Fatalf("revoke: %+v, %v", rv, err)
	}
	_, err = alice.Release(ctx, info.ID)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrDenied) || len(e.Reasons) != 1 || !strings.Contains(e.Reasons[0], "revoked: study over") {
		t.Fatalf("release after revoke: %v", err)
	}
}

// TestErrorMapping: each category a Service returns arrives as the same sentinel, status and
// reasons at the client.
func TestErrorMapping(t *testing.T) {
	n := newTestNode(t, Config{})
	ctx := context.Background()
	alice, bob := n.client(t, 0), n.client(t, 1)
	info, err := alice.UploadPad(ctx, strings.NewReader("pad"))
	if err != nil {
		t.Fatal(err)
	}
	prog, _ := alice.AddProgram(ctx, strings.NewReader("prog"))
	check := func(name string, err error, sentinel *Error, status int, reason string) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, sentinel) || e.Status != status {
			t.Errorf("%s: got %#v, want %s (%d)", name, err, sentinel.Code, status)
			return
		}
		if reason != "" && !strings.Contains(strings.Join(e.Reasons, "\n"), reason) {
			t.Errorf("%s: reasons %q lack %q", name, e.Reasons, reason)
		}
	}
	_, err = bob.Release(ctx, info.ID)
	check("denied", err, ErrDenied, 403, "only the owner may release")
	_, err = bob.SubmitJob(ctx, &JobSpec{Program: prog.SHA256, Inputs: map[string]string{"a": info.ID}, Purpose: "marketing"})
	check("denied job", err, ErrDenied, 403, "purpose marketing is forbidden")
	_, err = bob.Pad(ctx, "nope")
	check("not found", err, ErrNotFound, 404, "")
	if err != nil && !strings.Contains(err.Error(), "pad nope: not found") {
		t.Errorf("not found message %q does not carry the service's words", err)
	}
	_, err = alice.UploadPad(ctx, strings.NewReader("pad"))
	check("conflict", err, ErrConflict, 409, "")
	_, err = bob.Receipt(ctx, "boom")
	check("internal", err, ErrInternal, 500, "")
	if strings.Contains(err.Error(), "secret-path") {
		t.Errorf("internal error leaked its detail: %v", err)
	}
	if !strings.Contains(n.logs(), "secret-path") {
		t.Errorf("internal error detail not logged")
	}
	if errors.Is(err, ErrDenied) || errors.Is(err, ErrBodyHash) {
		t.Errorf("%v matches the wrong sentinel", err)
	}
	_, err = bob.Revoke(ctx, info.ID, "not mine")
	check("revoke by non-owner", err, ErrDenied, 403, "only the owner may revoke")
}

func TestSecurityHeaders(t *testing.T) {
	n := newTestNode(t, Config{})
	for _, path := range []string{"/v1/health", "/v1/pads", "/nope"} {
		resp, err := n.ts.Client().Get(n.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for h, want := range map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"X-Frame-Options":           "DENY",
			"Cache-Control":             "no-store",
			"Referrer-Policy":           "no-referrer",
			"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
			"Strict-Transport-Security": "max-age=63072000",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: CORS header set", path)
		}
	}
}

func TestUnroutedIsJSON(t *testing.T) {
	n := newTestNode(t, Config{})
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v2/pads", 404}, {"DELETE", "/v1/pads/x", 405}, {"OPTIONS", "/v1/jobs", 405}, {"GET", "/", 404},
		{"GET", "/v1//pads", 400}, {"GET", "/v1/pads/../jobs/x", 400}, {"GET", "/v1/pads/%2e%2e/jobs", 400}, {"GET", "/v1/pads/", 404},
	} {
		req, _ := http.NewRequest(tt.method, n.ts.URL+tt.path, nil)
		resp, err := n.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e := decodeError(resp.StatusCode, b)
		if resp.StatusCode != tt.status || e.HTTPStatus() != tt.status {
			t.Errorf("%s %s: %d %s", tt.method, tt.path, resp.StatusCode, b)
		}
	}
}

func TestUnauthenticatedEndpoints(t *testing.T) {
	att := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"nonce":"`+r.URL.Query().Get("nonce")+`"}`)
	})
	n := newTestNode(t, Config{Attestation: att})
	b, err := n.client(t, 0).Attestation(context.Background(), []byte{0xab, 0xcd})
	if err != nil || string(b) != `{"nonce":"abcd"}` {
		t.Fatalf("attestation: %q %v", b, err)
	}
	// A body on an unauthenticated route is refused.
	resp, err := n.ts.Client().Post(n.ts.URL+"/v1/health", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST health: %d", resp.StatusCode)
	}
	// So is a chunked body on a GET.
	req, _ := http.NewRequest("GET", n.ts.URL+"/v1/health", io.NopCloser(strings.NewReader("x")))
	req.ContentLength = -1
	resp, err = n.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("GET health with a chunked body: %d", resp.StatusCode)
	}
	// Without an attestation handler the route answers 404.
	_, err = newTestNode(t, Config{}).client(t, 0).Attestation(context.Background(), []byte{1})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("no attestation handler: %v", err)
	}
}

// TestAudienceFromTLS: the client learns the audience from the certificate TLS verified, and a
// request signed for another server's certificate is refused.
func TestAudienceFromTLS(t *testing.T) {
	a, b := newTestNode(t, Config{}), newTestNode(t, Config{})
	ca := a.client(t, 0)
	aud, err := ca.Audience(context.Background())
	if err != nil || aud != a.srv.Audience() || !strings.HasPrefix(aud, "spki-sha256:") {
		t.Fatalf("audience %q (server %q), %v", aud, a.srv.Audience(), err)
	}
	// A request captured at a replayed to b fails on the audience.
	req, _ := http.NewRequest("GET", b.ts.URL+"/v1/pads", nil)
	SignRequest(req, testKey(t, 0), a.srv.Audience(), EmptySHA256, time.Now())
	resp, err := b.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("cross-server replay: %d", resp.StatusCode)
	}
}

func TestAccessLogHasNoSecrets(t *testing.T) {
	n := newTestNode(t, Config{})
	c := n.client(t, 0)
	if _, err := c.ListPads(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	logs := n.logs()
	if !strings.Contains(logs, "caller="+testKey(t, 0).Identity().ID().String()) || !strings.Contains(logs, "status=200") {
		t.Fatalf("access log lacks caller or status: %s", logs)
	}
	for _, secret := range []string{testKey(t, 0).Identity().String(), "Styx-Signature", "nonce"} {
		if strings.Contains(logs, secret) {
			t.Errorf("access log contains %q", secret[:min(len(secret), 20)])
		}
	}
}
