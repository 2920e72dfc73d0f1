package sandbox

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// memory is the linear memory of one wasm instance where the platform lets the sandbox
// reserve address space (Linux, memory_linux.go; elsewhere wazero's default, a Go slice
// that is copied whenever it outgrows its capacity). The instance's whole maximum is
// reserved up front, inaccessible and uncommitted, and made readable and writable as the
// guest grows it, so growing never copies and never moves the memory; pages the guest never
// touches cost no RAM.
//
// Unmapping memory that the guest or a host function still uses would crash the node, and
// wazero frees a module's memory (LinearMemory.Free) whenever the module's resources are
// closed: from another goroutine (Runtime.Close closes every module, running ones
// included), or on the guest's own goroutine in the middle of a call (a module closed when
// its context ended frees them at the guest's next check). So Free never unmaps by itself.
// The sandbox brackets every call into the instance with enter and leave, and the region is
// unmapped only once it has been released (by Free, or by end when the sandbox knows the
// module is gone) and no call is in flight. A nil *memory (no reservation) does nothing.
type memory struct {
	log *slog.Logger

	mu        sync.Mutex
	region    []byte // the reservation, read-write up to committed; nil once unmapped
	committed int
	calls     int  // calls into the instance in flight
	released  bool // freed by wazero or ended by the sandbox: no new call may enter
	allocated bool
}

// newMemory returns the memory of a new instance, entered once for its instantiation
// (pair it with leave), or nil where the platform cannot reserve memory.
func newMemory(log *slog.Logger) *memory {
	if !canReserve {
		return nil
	}
	return &memory{log: log, calls: 1}
}

// attach makes wazero allocate the memory of the module instantiated with ctx from m.
func (m *memory) attach(ctx context.Context) context.Context {
	if m == nil {
		return ctx
	}
	return experimental.WithMemoryAllocator(ctx, m)
}

// Allocate implements experimental.MemoryAllocator: it reserves max bytes. A module has one
// memory; should the reservation fail (address space limits), the memory lives on the Go
// heap as with wazero's default allocator.
func (m *memory) Allocate(_, max uint64) experimental.LinearMemory {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.allocated || m.released || max == 0 {
		return &heapMemory{}
	}
	region, err := reserve(max)
	if err != nil {
		m.log.Warn("sandbox: reserving linear memory failed, growing it on the Go heap", "bytes", max, "err", err)
		return &heapMemory{}
	}
	m.allocated, m.region = true, region
	liveRegions.Add(1)
	return (*reserved)(m)
}

// enter reports whether a call may run in the instance, and if so counts it until leave.
func (m *memory) enter() bool {
	if m == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.released {
		return false
	}
	m.calls++
	return true
}

// leave ends a call counted by enter (or the instantiation counted by newMemory).
func (m *memory) leave() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls--
	m.unmapIfIdle()
}

// end tells that the module is gone (closed by the sandbox, or never instantiated): the
// memory is unmapped as soon as no call is in flight, whether or not wazero freed it.
func (m *memory) end() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.released = true
	m.unmapIfIdle()
}

// unmapIfIdle unmaps a released region no call uses. The unmapping itself runs on its own
// goroutine: it frees every page the guest touched (a Go guest: ≈ 0.4 ms), and the run whose
// end released the region need not wait for it. Nothing can reach the region by then.
func (m *memory) unmapIfIdle() {
	if !m.released || m.calls > 0 || m.region == nil {
		return
	}
	region, log := m.region, m.log
	m.region, m.committed = nil, 0
	unmapping.Add(1)
	go func() {
		defer unmapping.Add(-1)
		if err := unreserve(region); err != nil {
			log.Error("sandbox: unmapping linear memory", "err", err)
		}
		liveRegions.Add(-1)
	}()
}

// liveRegions counts the reservations not yet unmapped, and unmapping those being unmapped
// (for tests).
var liveRegions, unmapping atomic.Int64

// reserved is the experimental.LinearMemory view of a memory with a reservation.
type reserved memory

// Reallocate implements experimental.LinearMemory: it commits the region up to size bytes,
// in place. wazero calls it only on the guest's goroutine during a call (memory.grow) or
// the instantiation, when the region cannot be unmapped.
func (r *reserved) Reallocate(size uint64) []byte {
	m := (*memory)(r)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.region == nil || size > uint64(len(m.region)) {
		return nil // wazero checks the maximum first; nil fails the memory.grow
	}
	if n := int(size); n > m.committed {
		if err := commit(m.region[m.committed:n]); err != nil {
			m.log.Warn("sandbox: committing linear memory failed", "bytes", n, "err", err)
			return nil
		}
		m.committed = n
	}
	return m.region[:size:size]
}

// Free implements experimental.LinearMemory. It does not unmap a region still in use:
// see memory.
func (r *reserved) Free() { (*memory)(r).end() }

// heapMemory is a linear memory on the Go heap, grown by copying (wazero's default).
type heapMemory struct{ buf []byte }

func (h *heapMemory) Reallocate(size uint64) []byte {
	if n := int(size); n > cap(h.buf) {
		h.buf = append(h.buf, make([]byte, n-len(h.buf))...)
	} else {
		h.buf = h.buf[:n]
	}
	return h.buf
}

func (h *heapMemory) Free() { h.buf = nil }
