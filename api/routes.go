package api

import (
	"context"
	"net/http"
	"time"

	"github.com/styx-tee/styx/party"
)

// bodyKind says what a route's request body is.
type bodyKind int

const (
	noBody     bodyKind = iota // must be empty
	jsonBody                   // small JSON, read whole and hash-checked before decoding
	streamBody                 // streamed to the service, hash-checked at EOF
	frameBody                  // a session frame, read whole and MAC-checked (session_frame.go)
)

// A route is one line of the route table: everything the server needs to know about an
// endpoint before its handler runs.
type route struct {
	pattern string   // http.ServeMux pattern, method included
	public  bool     // no signature required (attestation, health); must have no body
	session bool     // authenticated by a query session's MAC instead of a signature
	body    bodyKind // request body
	limit   func(*Config) int64
	long    bool // streams or waits: deadlines extended past the JSON default
	handle  func(*Server, *call) (any, error)
}

// routes is the single table of every endpoint (see docs/api.md).
var routes = []route{
	{pattern: "GET /v1/health", public: true, handle: (*Server).health},
	{pattern: "GET /v1/attestation", public: true, handle: (*Server).attestation},
	{pattern: "POST /v1/pads", body: streamBody, limit: uploadLimit, long: true, handle: (*Server).uploadPad},
	{pattern: "GET /v1/pads", handle: (*Server).listPads},
	{pattern: "GET /v1/pads/{id}", handle: (*Server).getPad},
	{pattern: "POST /v1/pads/{id}/release", long: true, handle: (*Server).release},
	{pattern: "POST /v1/pads/{id}/query", body: jsonBody, limit: queryLimit, handle: (*Server).query},
	{pattern: "POST /v1/pads/{id}/sessions", body: jsonBody, handle: (*Server).openSession},
	{pattern: "POST /v1/sessions/{id}/query", session: true, body: frameBody, limit: sessionQueryLimit, handle: (*Server).sessionQuery},
	{pattern: "PUT /v1/pads/{id}/policy", body: jsonBody, limit: policyLimit, handle: (*Server).updatePolicy},
	{pattern: "POST /v1/pads/{id}/revoke", body: jsonBody, handle: (*Server).revoke},
	{pattern: "GET /v1/pads/{id}/lineage", handle: (*Server).lineage},
	{pattern: "POST /v1/programs", body: streamBody, limit: programLimit, long: true, handle: (*Server).addProgram},
	{pattern: "POST /v1/jobs", body: jsonBody, long: true, handle: (*Server).submitJob},
	{pattern: "POST /v1/jobs/explain", body: jsonBody, handle: (*Server).explainJob},
	{pattern: "GET /v1/jobs/{id}", long: true, handle: (*Server).getJob},
	{pattern: "GET /v1/audit", handle: (*Server).audit},
	{pattern: "GET /v1/audit/head", handle: (*Server).auditHead},
	{pattern: "GET /v1/receipts/{id}", handle: (*Server).receipt},
}

func uploadLimit(c *Config) int64  { return c.MaxUploadBytes }
func programLimit(c *Config) int64 { return c.MaxProgramBytes }

// queryLimit leaves room for a MaxQueryInput input in base64 inside JSON.
func queryLimit(c *Config) int64 { return max(c.MaxJSONBytes, MaxQueryInput*4/3+4096) }

// sessionQueryLimit is a session frame's header and a MaxQueryInput input.
func sessionQueryLimit(*Config) int64 { return sessionFrameHeader + MaxQueryInput }

// policyLimit leaves room for a MaxPolicySize policy in base64 inside JSON.
func policyLimit(c *Config) int64 { return max(c.MaxJSONBytes, MaxPolicySize*4/3+16384) }

// A call is one request on its way through a route.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	caller *party.Identity // nil on public routes
	body   *hashedBody     // streamBody routes
	json   []byte          // jsonBody routes: the verified body; session routes: the authenticated input
	// session routes: the session that authenticated the request, its nonce and input hash
	session *querySession
	bind    sessionBinding
	status  int // success status; zero means 200
}

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for i := range routes {
		rt := &routes[i]
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	return &front{s: s, mux: mux}
}

// deadlines extends the connection's deadlines for routes that stream or wait.
func (s *Server) deadlines(w http.ResponseWriter, rt *route) {
	if !rt.long {
		return
	}
	d := max(s.cfg.StreamTimeout, s.cfg.MaxWait+jsonTimeout)
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(d) // the real clock, even when Config.Now is a test clock
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}
