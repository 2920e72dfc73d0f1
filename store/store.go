package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures [Open]. Dir and Key are required; the zero value of
// every other field is a safe single-node default.
type Config struct {
	// Dir holds the store's files (typically <node data dir>/store). It is
	// created with mode 0700 if missing.
	Dir string
	// Key keys encryption at rest. The engine derives it from the sealed
	// cluster secret; the store never sees that secret.
	Key *Key
	// Logger receives diagnostics, including the NATS server's own
	// warnings and errors. Nil discards them.
	Logger *slog.Logger
	// Listen, if set ("host:port", port 0 for any), opens a NATS client port
	// so that other local processes (and later, once cluster authentication
	// exists, other nodes) can connect. Only loopback addresses are accepted
	// for now: the port has no authentication. Empty (the default) means no
	// listening socket at all: the store is reachable only in process.
	Listen string
	// ServerName names this node to NATS. Empty means "styx".
	ServerName string
	// MaxStoreBytes caps JetStream's disk use. Zero means no cap.
	MaxStoreBytes int64
	// JobMaxDeliver is how many times a job is delivered before the queue
	// gives up on it. Zero means 5.
	JobMaxDeliver int
	// JobAckWait is how long a worker may hold a job without acknowledging
	// or signalling progress before it is redelivered. Zero means 1 minute.
	JobAckWait time.Duration

	// noSync turns SyncAlways off. Benchmarks only, to measure its cost.
	noSync bool
	// noEncrypt turns encryption at rest off. Tests only, to check on the
	// raw disk that Purge erases bytes.
	noEncrypt bool
}

// Store is an open store. It is safe for concurrent use.
type Store struct {
	cfg  Config
	log  *slog.Logger
	srv  *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
	lock *os.File

	kvs     map[Bucket]jetstream.KeyValue
	streams map[Bucket]jetstream.Stream
	jobs    *Queue
	audit   *AuditStream

	counters counterCache // first guesses for Reserve's compare-and-set

	// inbox receives the replies to ReadMany, subscribed on first use.
	inboxOnce sync.Once
	inbox     *inbox
	inboxErr  error

	closeOnce sync.Once
	closeErr  error
}

// Open starts the embedded JetStream server on cfg.Dir, connects to it in
// process, and creates the buckets and streams the node needs. Opening an
// existing store with a different key fails with ErrWrongKey.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.logger()}
	if err := s.open(ctx); err != nil {
		s.shutdown()
		return nil, err
	}
	s.log.Info("store opened", "dir", cfg.Dir, "listen", s.ClientURL())
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("store: create dir: %w", err)
	}
	lock, err := lockDir(s.cfg.Dir)
	if err != nil {
		return err
	}
	s.lock = lock
	if err := checkKey(s.cfg.Dir, s.cfg.Key); err != nil {
		return err
	}
	if err := s.startServer(); err != nil {
		return err
	}
	if err := s.connect(); err != nil {
		return err
	}
	return s.setup(ctx)
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("%w: Config.Dir is empty", ErrInvalid)
	}
	if c.Key == nil {
		return fmt.Errorf("%w: Config.Key is nil", ErrInvalid)
	}
	if c.MaxStoreBytes < 0 || c.JobMaxDeliver < 0 || c.JobAckWait < 0 {
		return fmt.Errorf("%w: negative limit in Config", ErrInvalid)
	}
	return nil
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (s *Store) serverOptions() (*server.Options, error) {
	name := s.cfg.ServerName
	if name == "" {
		name = "styx"
	}
	opts := &server.Options{
		ServerName:        name,
		DontListen:        true,
		NoSigs:            true,
		JetStream:         true,
		StoreDir:          filepath.Join(s.cfg.Dir, "nats"),
		SyncAlways:        !s.cfg.noSync,
		JetStreamKey:      s.cfg.Key.natsKey(),
		JetStreamCipher:   server.AES,
		JetStreamMaxStore: s.cfg.MaxStoreBytes,
	}
	if s.cfg.MaxStoreBytes == 0 {
		opts.JetStreamMaxStore = -1
	}
	if s.cfg.noEncrypt {
		opts.JetStreamKey = ""
	}
	if s.cfg.Listen != "" {
		host, port, err := splitListen(s.cfg.Listen)
		if err != nil {
			return nil, err
		}
		opts.DontListen, opts.Host, opts.Port = false, host, port
	}
	return opts, nil
}

func splitListen(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: Config.Listen %q: %v", ErrInvalid, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: Config.Listen %q: bad port", ErrInvalid, addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", 0, fmt.Errorf("%w: Config.Listen %q: only loopback addresses until cluster "+
			"authentication exists (anyone who reaches the port can write the store)", ErrInvalid, addr)
	}
	return host, port, nil
}

func (s *Store) startServer() error {
	opts, err := s.serverOptions()
	if err != nil {
		return err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("store: configure nats server: %w", err)
	}
	srv.SetLoggerV2(natsLogger{s.log}, false, false, false)
	srv.Start()
	s.srv = srv
	if !srv.ReadyForConnections(30 * time.Second) {
		return errors.New("store: embedded nats server did not become ready")
	}
	if !srv.JetStreamEnabled() {
		return errors.New("store: jetstream failed to start (see log)")
	}
	return nil
}

func (s *Store) connect() error {
	nc, err := nats.Connect("",
		nats.InProcessServer(s.srv),
		nats.Name("styx-store"),
		nats.NoReconnect(),
	)
	if err != nil {
		return fmt.Errorf("store: connect in process: %w", err)
	}
	s.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("store: jetstream context: %w", err)
	}
	s.js = js
	return nil
}

func (s *Store) setup(ctx context.Context) error {
	var wg sync.WaitGroup
	var errBuckets, errJobs, errAudit error
	wg.Go(func() { errBuckets = s.createBuckets(ctx) })
	wg.Go(func() { s.jobs, errJobs = newQueue(ctx, s.js, s.cfg.JobMaxDeliver, s.cfg.JobAckWait) })
	wg.Go(func() { s.audit, errAudit = newAuditStream(ctx, s.js) })
	wg.Wait()
	return errors.Join(errBuckets, errJobs, errAudit)
}

// ClientURL is the URL other processes can use to reach this store's NATS
// server, or "" when it does not listen (the default).
func (s *Store) ClientURL() string {
	if s.srv == nil || s.cfg.Listen == "" {
		return ""
	}
	return s.srv.ClientURL()
}

// Close drains the in-process connection (flushing pending acks), shuts the
// server down and releases the directory. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.shutdown()
		s.log.Info("store closed", "dir", s.cfg.Dir)
	})
	return s.closeErr
}

func (s *Store) shutdown() error {
	var errs []error
	if s.nc != nil {
		errs = append(errs, drain(s.nc))
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close())
	}
	return errors.Join(errs...)
}

func drain(nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("store: drain: %w", err)
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		nc.Close()
		return errors.New("store: drain timed out")
	}
	return nil
}

func (s *Store) alive() error {
	if s.nc == nil || s.nc.IsClosed() || s.nc.IsDraining() {
		return ErrClosed
	}
	return nil
}
