package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/party"
)

// Environment variables the client commands read (see docs/api.md, "CLI").
const (
	envServer = "STYX_SERVER" // node URL; default defaultServer
	envKey    = "STYX_KEY"    // party key file
	envPins   = "STYX_PINS"   // pin store written by styx attest; default cluster.DefaultPinFile()
)

// defaultServer is the local node that styx serve listens on by default.
const defaultServer = "https://127.0.0.1:7443"

// clientFlags are the flags every client command shares.
type clientFlags struct {
	server string
	key    string
	pins   string
	json   bool
	pinned *cluster.Pin // set by dial when the server has a pin
}

// define registers --server, --key and --pins (and --json if withJSON) on fs.
func (cf *clientFlags) define(e *env, fs *flag.FlagSet, withJSON bool) {
	server := e.getenv(envServer)
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&cf.server, "server", server, "node `URL` (env "+envServer+")")
	fs.StringVar(&cf.key, "key", e.getenv(envKey), "party key `FILE` that signs requests (env "+envKey+")")
	fs.StringVar(&cf.pins, "pins", e.getenv(envPins), "pin store `FILE` written by styx attest (env "+envPins+"; default in the user config dir)")
	if withJSON {
		fs.BoolVar(&cf.json, "json", false, "print JSON instead of text")
	}
}

// dial loads the key and the server's attested TLS pin and returns a client.
func (cf *clientFlags) dial() (*api.Client, *party.Key, error) {
	key, err := loadKey(cf.key)
	if err != nil {
		return nil, nil, err
	}
	tlsConfig, err := cf.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: cf.server, Key: key, TLS: tlsConfig})
	if err != nil {
		return nil, nil, err
	}
	return c, key, nil
}

// tlsConfig returns the configuration pinned to the key attested for the server: a client
// command never talks to a node it has not attested.
func (cf *clientFlags) tlsConfig() (*tls.Config, error) {
	u, err := url.Parse(cf.server)
	if err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("--server %q: want https://HOST:PORT", cf.server)
	}
	path := cf.pins
	if path == "" {
		if path, err = cluster.DefaultPinFile(); err != nil {
			return nil, fmt.Errorf("find pin store: %w (pass --pins FILE)", err)
		}
	}
	store := cluster.NewPinStore(path)
	pin, ok, err := store.Get(cf.server)
	if err != nil {
		return nil, err
	}
	if ok {
		cf.pinned = &pin
	}
	return store.TLSConfig(cf.server)
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// apiError adds advice to the errors a user can act on.
func apiError(err error) error {
	var e *api.Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, api.ErrUnauthenticated) && strings.Contains(e.Message, "clock"):
		return fmt.Errorf("%w (is this machine's clock right?)", err)
	case errors.Is(err, api.ErrDenied) && len(e.Reasons) > 0:
		var b strings.Builder
		b.WriteString(e.Message)
		for _, r := range e.Reasons {
			b.WriteString("\n  - ")
			b.WriteString(r)
		}
		return errors.New(b.String())
	}
	return err
}

// needArgs checks the positional argument count and prints usage otherwise.
func needArgs(fs *flag.FlagSet, n int) error {
	if fs.NArg() != n {
		fs.Usage()
		return errUsage
	}
	return nil
}

// withClient parses flags, dials and runs f, mapping API errors to advice.
func withClient(e *env, fs *flag.FlagSet, args []string, cf *clientFlags, nargs int,
	f func(c *api.Client, key *party.Key) error) error {
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if err := needArgs(fs, nargs); err != nil {
		return err
	}
	c, key, err := cf.dial()
	if err != nil {
		return err
	}
	err = apiError(f(c, key))
	if c.Simulated() {
		fmt.Fprintln(e.stderr, "note: the node runs on a SIMULATED TEE: no hardware protection (development only)")
	}
	return err
}
