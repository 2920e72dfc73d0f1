package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseSignedRequest: no header set panics the parser, and whatever it accepts has a
// canonical string of exactly nine lines (no field can smuggle a newline) that round-trips
// through the headers SignRequest would write.
func FuzzParseSignedRequest(f *testing.F) {
	key := testKey(f, 0)
	r := signedRequest(f, key, "node-a", "GET", "/v1/audit?pad=p", nil, testNow)
	f.Add(r.Method, r.RequestURI, r.Header.Get(HeaderIdentity), r.Header.Get(HeaderDate), r.Header.Get(HeaderNonce),
		r.Header.Get(HeaderContentSHA256), r.Header.Get(HeaderAudience), r.Header.Get(HeaderSignature))
	f.Add("POST", "/v1/pads\n", "styx1", "2026-01-01T00:00:00Z", "AAAAAAAAAAAAAAAAAAAAAA", EmptySHA256, "a\nb", "")
	f.Add("GET", "/", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, method, uri, ident, date, nonce, sum, aud, sig string) {
		h := http.Header{}
		for k, v := range map[string]string{HeaderIdentity: ident, HeaderDate: date, HeaderNonce: nonce,
			HeaderContentSHA256: sum, HeaderAudience: aud, HeaderSignature: sig} {
			h.Set(k, v)
		}
		s, err := parseSignedRequest(method, uri, h)
		if err != nil {
			return
		}
		lines := strings.Split(string(s.Canonical()), "\n")
		if len(lines) != 9 || lines[8] != "" {
			t.Fatalf("canonical string has %d lines: %q", len(lines), s.Canonical())
		}
		if lines[4] != date || lines[5] != nonce || lines[6] != sum || lines[3] != aud || lines[2] != uri {
			t.Fatalf("canonical fields differ from headers: %q", s.Canonical())
		}
	})
}

// FuzzDecodeError: any response body becomes a bounded *Error with a known HTTP status.
func FuzzDecodeError(f *testing.F) {
	f.Add(403, []byte(`{"code":"denied","message":"no","reasons":["a","b"]}`))
	f.Add(502, []byte("<html>bad gateway</html>"))
	f.Add(200, []byte(`{"code":""}`))
	f.Add(404, []byte(`{"code":"not_found","reasons":["`+strings.Repeat("x", 5000)+`"]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeError(status, body)
		if e.Code == "" || len(e.Message) > maxErrorText+3 || len(e.Reasons) > maxErrorReasons {
			t.Fatalf("unbounded error: %+v", e)
		}
		for _, r := range e.Reasons {
			if len(r) > maxErrorText+3 {
				t.Fatalf("reason of %d bytes", len(r))
			}
		}
	})
}

// FuzzJobSpec: decoding and validating any body never panics, and a valid spec re-encodes to
// a spec that is still valid and equal.
func FuzzJobSpec(f *testing.F) {
	f.Add([]byte(`{"program":"` + strings.Repeat("a", 64) + `","inputs":{"a":"pad-1"},"purpose":"research","outputs":[{"name":"m","kind":"model"}],"params":{"k":1}}`))
	f.Add([]byte(`{"inputs":{"":""}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var spec JobSpec
		if decodeJSON(body, &spec) != nil || spec.Validate() != nil {
			return
		}
		b, err := json.Marshal(&spec)
		if err != nil {
			t.Fatal(err)
		}
		var again JobSpec
		if err := decodeJSON(b, &again); err != nil || again.Validate() != nil {
			t.Fatalf("re-encoded spec fails: %v", err)
		}
		b2, _ := json.Marshal(&again)
		if !bytes.Equal(b, b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzValidatePadID: an accepted id is safe in a URL path and a statement line.
func FuzzValidatePadID(f *testing.F) {
	for _, s := range []string{"pad-1", "..", ".", "a/b", "a b", "a\nb", strings.Repeat("x", 129), "P.ad_9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if ValidatePadID(id) != nil {
			return
		}
		if strings.ContainsAny(id, "/?#%\n \\") || id == "." || id == ".." || len(id) > MaxPadIDLen {
			t.Fatalf("unsafe id accepted: %q", id)
		}
	})
}

// FuzzHandler sends arbitrary requests through the whole server: nothing panics, nothing
// reaches the service unauthenticated, and every refusal is a JSON error with a known code.
func FuzzHandler(f *testing.F) {
	key := testKey(f, 0)
	good := signedRequest(f, key, "node-a", "POST", "/v1/jobs/explain", []byte(`{}`), testNow)
	f.Add("POST", "/v1/jobs/explain", good.Header.Get(HeaderSignature), good.Header.Get(HeaderNonce), []byte(`{}`))
	f.Add("GET", "/v1/pads/x/lineage", "", "", []byte{})
	f.Add("PUT", "/v1/pads/%2e%2e/policy", "x", "y", []byte("{"))
	f.Add("GET", "/v1//pads", "", "", []byte{})
	f.Add("GET", "/v1/pads/./x", "", "", []byte{})
	f.Fuzz(func(t *testing.T, method, target, sig, nonce string, body []byte) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") || !printableASCII(method) {
			return
		}
		n := newHandlerNode(t, nil)
		r := signedRequest(t, key, "node-a", "POST", "/v1/jobs/explain", []byte(`{}`), testNow)
		r.Method, r.RequestURI = method, target
		if u, err := r.URL.Parse(target); err == nil {
			r.URL = u
		}
		r.Header.Set(HeaderSignature, sig)
		r.Header.Set(HeaderNonce, nonce)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		w := n.do(r)
		if w.Code < 300 {
			if sig != good.Header.Get(HeaderSignature) || nonce != good.Header.Get(HeaderNonce) {
				t.Fatalf("%s %s accepted with a changed signature or nonce: %d", method, target, w.Code)
			}
			return
		}
		var e Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || statusOf(e.Code) != w.Code {
			t.Fatalf("%s %s: %d %q", method, target, w.Code, w.Body)
		}
		if len(n.svc.pads)+len(n.svc.programs)+len(n.svc.jobs) != 0 {
			t.Fatal("state changed by a refused request")
		}
	})
}

// FuzzParseSessionFrame: no body panics the session frame parser, what it accepts is within
// its caps, and writing the parsed frame back gives the body it was parsed from.
func FuzzParseSessionFrame(f *testing.F) {
	keys, err := deriveSessionKeys(make([]byte, sessionSecretLen), "AAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		f.Fatal(err)
	}
	good, _ := sealSessionQuery(keys, "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/query", "AAAAAAAAAAAAAAAAAAAAAA", []byte("q"), testNow)
	f.Add(good)
	f.Add(good[:sessionFrameHeader])
	f.Add(good[:sessionFrameHeader-1])
	f.Add([]byte{})
	f.Add([]byte(`{"input":"eA=="}`))
	f.Add(append([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, good[frameNonceAt:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := parseSessionFrame(b)
		if err != nil {
			return
		}
		if len(fr.input) > MaxQueryInput || fr.date.Unix() < 1 || fr.date.Unix() > maxFrameDate {
			t.Fatalf("accepted a frame out of its caps: %d-byte input, date %d", len(fr.input), fr.date.Unix())
		}
		if len(fr.date.Format(dateLayout)) != len(dateLayout) {
			t.Fatalf("date %v does not format in %s", fr.date, dateLayout)
		}
		if back := appendSessionFrame(nil, &fr); !bytes.Equal(back, b) {
			t.Fatalf("frame does not round-trip:\n%x\n%x", b, back)
		}
	})
}
