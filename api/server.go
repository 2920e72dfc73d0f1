package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Config configures a Server. Only Service is required (and, without TLS, Audience); every
// other zero field takes the safe default named in its comment.
type Config struct {
	Service Service
	// Attestation serves GET /v1/attestation (unauthenticated: a client needs it before it
	// trusts the server). Nil: the route answers 404.
	Attestation http.Handler
	// TLS is the server's TLS configuration (the cluster package's, with the key bound to the
	// attestation evidence). Nil serves plain HTTP, for tests and for a local reverse proxy.
	TLS *tls.Config
	// Audience is the name requests must be signed for. Empty: AudienceForCert of the single
	// certificate in TLS.Certificates.
	Audience string
	Logger   *slog.Logger // nil: slog.Default()

	MaxSkew         time.Duration // clock skew accepted on Styx-Date; default 2 minutes
	MaxNonces       int           // nonces remembered at once; default 1<<18 (then the oldest are forgotten and older dates refused)
	MaxJSONBytes    int64         // JSON request bodies; default 1 MiB
	MaxUploadBytes  int64         // sealed Pad uploads; default 1 GiB
	MaxProgramBytes int64         // WebAssembly modules; default 64 MiB
	MaxWait         time.Duration // longest a wait=true request is held; default 2 minutes
	StreamTimeout   time.Duration // read/write deadline of upload and release routes; default 1 hour

	SessionTTL           time.Duration // life of a query session; default 10 minutes
	MaxSessions          int           // open query sessions at once; default 4096
	MaxSessionsPerCaller int           // per caller (opening one more drops the caller's oldest); default 8

	Now func() time.Time // clock; nil: time.Now
	// Simulated marks every response with "Styx-TEE: simulated": the node runs on the simulated
	// TEE, and everything it returns must say so.
	Simulated bool
}

// Default limits.
const (
	DefaultMaxSkew         = 2 * time.Minute
	DefaultMaxNonces       = 1 << 18
	DefaultMaxJSONBytes    = 1 << 20
	DefaultMaxUploadBytes  = 1 << 30
	DefaultMaxProgramBytes = 64 << 20
	DefaultMaxWait         = 2 * time.Minute
	DefaultStreamTimeout   = time.Hour

	jsonTimeout       = 30 * time.Second
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// A Server is the node's HTTP API. Create it with NewServer; run it with Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	verify   *verifier
	sessions *sessionTable
	warm     *warmStacks
	handler  http.Handler
}

// TEEHeader is the response header by which a node on the simulated TEE marks every answer.
const TEEHeader = "Styx-TEE"

// NewServer checks cfg, fills its defaults and builds the route table.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Service == nil {
		return nil, errors.New("api: Config.Service is nil")
	}
	if cfg.Audience == "" {
		aud, err := audienceFromTLS(cfg.TLS)
		if err != nil {
			return nil, err
		}
		cfg.Audience = aud
	}
	if len(cfg.Audience) > maxAudienceLen || !printableASCII(cfg.Audience) {
		return nil, fmt.Errorf("api: Config.Audience %q: want 1-%d printable characters", cfg.Audience, maxAudienceLen)
	}
	setDefault(&cfg.MaxSkew, DefaultMaxSkew)
	setDefault(&cfg.MaxNonces, DefaultMaxNonces)
	setDefault(&cfg.MaxJSONBytes, DefaultMaxJSONBytes)
	setDefault(&cfg.MaxUploadBytes, DefaultMaxUploadBytes)
	setDefault(&cfg.MaxProgramBytes, DefaultMaxProgramBytes)
	setDefault(&cfg.MaxWait, DefaultMaxWait)
	setDefault(&cfg.StreamTimeout, DefaultStreamTimeout)
	setDefault(&cfg.SessionTTL, DefaultSessionTTL)
	setDefault(&cfg.MaxSessions, DefaultMaxSessions)
	setDefault(&cfg.MaxSessionsPerCaller, DefaultMaxSessionsPerCaller)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Logger,
		verify: &verifier{audience: cfg.Audience, skew: cfg.MaxSkew,
			nonces: newNonceCache(cfg.MaxNonces), ids: identityCache{max: identityCacheSize}, now: cfg.Now},
		sessions: newSessionTable(cfg.MaxSessions, cfg.MaxSessionsPerCaller),
		warm:     newWarmStacks(),
	}
	s.handler = s.buildHandler()
	return s, nil
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func audienceFromTLS(c *tls.Config) (string, error) {
	if c == nil || len(c.Certificates) != 1 || len(c.Certificates[0].Certificate) == 0 {
		return "", errors.New("api: Config.Audience is empty and TLS does not hold exactly one certificate to derive it from")
	}
	leaf := c.Certificates[0].Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificates[0].Certificate[0]); err != nil {
			return "", fmt.Errorf("api: parse server certificate: %w", err)
		}
	}
	return AudienceForCert(leaf), nil
}

// Audience returns the name clients must sign requests for.
func (s *Server) Audience() string { return s.cfg.Audience }

// Handler returns the API as an http.Handler (security headers, authentication, limits and
// logging included), for tests and for embedding in another server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the API on ln until ctx is done, then shuts down gracefully: it stops
// accepting, lets requests in flight finish for up to 30 seconds, closes whatever still runs,
// and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         s.cfg.TLS,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       jsonTimeout,
		WriteTimeout:      jsonTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLS != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		hs.Close() // the grace period is over: cut what is still running
	}
	<-errc
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

// ListenAndServe listens on addr (TCP) and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	return s.Serve(ctx, ln)
}
