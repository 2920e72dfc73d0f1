//go:build !unix

package audit

// lockDir is a no-op where flock is not available; run one process per log directory.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
