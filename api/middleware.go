package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// front is the outermost handler: security headers, access log, panics, and JSON answers for
// paths and methods the route table does not know.
type front struct {
	s   *Server
	mux *http.ServeMux
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w}
	securityHeaders(lw.Header(), r.TLS != nil)
	if f.s.cfg.Simulated {
		lw.Header().Set(TEEHeader, "simulated")
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			f.s.log.Error("api: handler panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			if !lw.wrote {
				writeError(lw, ErrInternal)
			}
		}
		f.s.access(r, lw, start)
	}()
	if !cleanPath(r.URL.Path) {
		writeError(lw, Errorf(ErrBadRequest, "path is not in canonical form (no //, . or .. segments)"))
		return
	}
	if _, pattern := f.mux.Handler(r); pattern == "" {
		f.unrouted(lw, r)
		return
	}
	f.mux.ServeHTTP(lw, r)
}

// cleanPath reports whether p is already clean, so the mux never answers with a redirect and
// what is signed is what is routed.
func cleanPath(p string) bool {
	c := path.Clean(p)
	if p != "/" && strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c == p
}

// unrouted answers a request no route matches: 405 if the path exists for another method.
func (f *front) unrouted(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, p := f.mux.Handler(probe); p != "" {
			writeError(w, Errorf(ErrMethodNotAllowed, "method %s not allowed on %s", r.Method, r.URL.Path))
			return
		}
	}
	writeError(w, Errorf(ErrNotFound, "no such endpoint"))
}

// securityHeaders are set on every response: nothing here is for a browser to render,
// frame, sniff, cache or share across origins.
func securityHeaders(h http.Header, tls bool) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if tls {
		h.Set("Strict-Transport-Security", "max-age=63072000")
	}
}

// logWriter records the status and size of a response for the access log.
type logWriter struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
	caller string // short party id, once authenticated
	code   Code   // error code, if the response is an error
}

func (w *logWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (deadlines, flushing).
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// access logs one request: never headers, bodies or signatures, only who did what and how it went.
func (s *Server) access(r *http.Request, w *logWriter, start time.Time) {
	level := slog.LevelInfo
	if w.status >= 500 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", w.status),
		slog.Int64("bytes", w.n),
		slog.Duration("elapsed", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
	}
	if w.caller != "" {
		attrs = append(attrs, slog.String("caller", w.caller))
	}
	if w.code != "" {
		attrs = append(attrs, slog.String("code", string(w.code)))
	}
	s.log.LogAttrs(r.Context(), level, "api request", attrs...)
}

// writeError sends e as the JSON error body with its status.
func writeError(w http.ResponseWriter, e *Error) {
	if lw, ok := w.(*logWriter); ok {
		lw.code = e.Code
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	if e.Code == CodeUnavailable {
		h.Set("Retry-After", "1")
	}
	if e.Code == CodeUnauthenticated {
		h.Set("WWW-Authenticate", `Styx-Signature realm="styx"`)
	}
	b, _ := json.Marshal(clampError(e))
	w.WriteHeader(e.HTTPStatus())
	w.Write(append(b, '\n'))
}

// writeJSON sends v as a JSON body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		writeError(w, ErrInternal)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// decodeJSON decodes exactly one JSON value into v, refusing unknown fields.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(ErrBadRequest, "request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Errorf(ErrBadRequest, "request body: trailing data after the JSON value")
	}
	return nil
}
