//go:build unix

package audit

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive flock on path, so that two processes never append to one log.
func lockDir(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: log %s is open in another process: %w", path, err)
	}
	return f.Close, nil
}
