package api

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// wrap runs the fixed order every route goes through: authenticate from the headers alone,
// then bound and check the body, then the handler, then the response. A session query is the
// exception: its authenticators are in its bounded body (prepareSession).
// Session queries run on a warm stack (warm.go).
func (s *Server) wrap(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.session {
			s.warm.run(func() { s.serve(rt, w, r) })
			return
		}
		s.serve(rt, w, r)
	})
}

func (s *Server) serve(rt *route, w http.ResponseWriter, r *http.Request) {
	c := &call{w: w, r: r, ctx: r.Context()}
	var v any
	err := s.prepare(rt, c)
	if err == nil {
		s.deadlines(w, rt)
		v, err = rt.handle(s, c)
	}
	if err == nil && c.body != nil {
		err = c.body.finish()
	}
	s.respond(c, v, err)
}

// prepare authenticates the request and reads or wraps its body.
func (s *Server) prepare(rt *route, c *call) error {
	r := c.r
	if rt.public {
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			return Errorf(ErrBadRequest, "this endpoint takes no request body")
		}
		return nil
	}
	limit := int64(0)
	switch {
	case rt.limit != nil:
		limit = rt.limit(&s.cfg)
	case rt.body == jsonBody:
		limit = s.cfg.MaxJSONBytes
	}
	if rt.session {
		// The authenticators are in the body (session_frame.go): prepareSession reads it.
		if err := s.prepareSession(c, limit); err != nil {
			return err
		}
		if lw, ok := c.w.(*logWriter); ok {
			lw.caller = c.session.callerID
		}
		return nil
	}
	sr, err := s.verify.verify(r)
	if err != nil {
		return err
	}
	c.caller = sr.Identity
	if lw, ok := c.w.(*logWriter); ok {
		lw.caller = c.caller.ID().String()
	}
	if r.ContentLength > limit {
		return Errorf(ErrTooLarge, "request body of %d bytes is over the %d-byte limit", r.ContentLength, limit)
	}
	body := newHashedBody(r.Body, sr.ContentSHA256, limit)
	switch rt.body {
	case streamBody:
		c.body = body
	case jsonBody:
		if c.json, err = io.ReadAll(body); err != nil {
			return err
		}
	default:
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
	}
	return nil
}

// respond writes the handler's result: an error body, a stream, raw bytes or JSON.
func (s *Server) respond(c *call, v any, err error) {
	if err != nil {
		e, internal := toError(err)
		if internal {
			s.log.Error("api: internal error", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
		}
		if lw, ok := c.w.(*logWriter); ok && lw.wrote {
			return // a stream already started; the client sees it cut short
		}
		writeError(c.w, e)
		return
	}
	status := c.status
	if status == 0 {
		status = http.StatusOK
	}
	switch v := v.(type) {
	case written:
	case io.ReadCloser:
		defer v.Close()
		c.w.Header().Set("Content-Type", "application/octet-stream")
		c.w.WriteHeader(status)
		if _, err := io.Copy(c.w, v); err != nil {
			s.log.Warn("api: response stream cut short", "path", c.r.URL.Path, "err", err)
		}
	case []byte:
		c.w.Header().Set("Content-Type", "application/octet-stream")
		c.w.Header().Set("Content-Length", strconv.Itoa(len(v)))
		c.w.WriteHeader(status)
		c.w.Write(v)
	default:
		writeJSON(c.w, status, v)
	}
}

// written is returned by a handler that wrote its own response.
type written struct{}

// pathID returns the {id} path value, validated.
func (c *call) pathID() (string, error) {
	id := c.r.PathValue("id")
	return id, ValidatePadID(id)
}

// query parses the query string strictly: only the named keys, each at most once.
func (c *call) query(allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, Errorf(ErrBadRequest, "query string: %v", err)
	}
	for k, v := range q {
		if !contains(allowed, k) {
			return nil, Errorf(ErrBadRequest, "unknown query parameter %q (allowed: %s)", abbrev(k), strings.Join(allowed, ", "))
		}
		if len(v) != 1 {
			return nil, Errorf(ErrBadRequest, "query parameter %q given %d times", k, len(v))
		}
	}
	return q, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// uintParam parses an optional unsigned query parameter.
func uintParam(q url.Values, name string) (uint64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		return 0, Errorf(ErrBadRequest, "query parameter %s: want a non-negative integer", name)
	}
	return n, nil
}

// boolParam parses an optional boolean query parameter ("true"/"false"/"1"/"0").
func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, Errorf(ErrBadRequest, "query parameter %s: want true or false", name)
	}
	return b, nil
}
