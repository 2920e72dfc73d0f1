package sandbox

import (
	"math"
	"syscall"
)

const canReserve = true

// reserve maps size bytes of address space that cannot be accessed and is not committed.
func reserve(size uint64) ([]byte, error) {
	if size == 0 || size > math.MaxInt {
		return nil, syscall.EINVAL
	}
	return syscall.Mmap(-1, 0, int(size), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
}

// commit makes b (page-aligned: wasm pages are 64 KiB) readable and writable; its pages
// read as zeros and take RAM when first touched.
func commit(b []byte) error { return syscall.Mprotect(b, syscall.PROT_READ|syscall.PROT_WRITE) }

func unreserve(b []byte) error { return syscall.Munmap(b) }
