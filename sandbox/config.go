package sandbox

import (
	"log/slog"
	"time"

	"github.com/tetratelabs/wazero"
)

// Config is the immutable configuration of a [Runtime]. Zero fields take the defaults.
type Config struct {
	MemoryLimit    uint64        // bytes of linear memory per instance (default 256 MiB)
	Timeout        time.Duration // wall time per run, per warm-up and per query (default 60 s)
	MaxOutputBytes int64         // bytes written to all outputs of one run (default 64 MiB)
	MaxLogBytes    int64         // bytes of logs, stdout and stderr of one run (default 64 KiB)
	MaxHandles     int           // open inputs and outputs at once (default 64)
	MaxMessage     int           // bytes of a query or of its response (default 1 MiB)
	MaxModules     int           // compiled modules kept in the cache (default 64)
	Cache          *Cache        // optional: compiled code shared between runtimes
	Logger         *slog.Logger  // diagnostics of the node (never guest output)
}

const wasmPage = 65536

// Cache holds compiled machine code in memory, shared between the runtimes of one process
// that are given it. It is deliberately memory-only: a cache of compiled code on disk
// would sit outside the TEE, where a modified entry would run as trusted native code.
type Cache struct{ c wazero.CompilationCache }

// NewCache returns an empty in-memory cache.
func NewCache() *Cache { return &Cache{c: wazero.NewCompilationCache()} }

func (c Config) withDefaults() Config {
	if c.MemoryLimit == 0 {
		c.MemoryLimit = 256 << 20
	}
	c.MemoryLimit = min(c.MemoryLimit, 4<<30)
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
	if c.MaxOutputBytes <= 0 {
		c.MaxOutputBytes = 64 << 20
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = 64 << 10
	}
	if c.MaxHandles <= 0 {
		c.MaxHandles = 64
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 1 << 20
	}
	if c.MaxModules <= 0 {
		c.MaxModules = 64
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) memoryPages() uint32 { return uint32(c.MemoryLimit / wasmPage) }
