//go:build !unix

package store

import (
	"os"
	"path/filepath"
)

// lockDir only creates the lock file on systems without flock; Styx nodes
// run on Linux, where lock_unix.go applies.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
}
