// Package tsm fetches reports through the Linux configfs-tsm report interface with a
// configurable root, so a faked tree can stand in for the kernel's. The root is the directory
// that holds the report subsystem: /sys/kernel/config/tsm for the kernel (configfsi.TsmPrefix),
// never .../tsm/report; reports are made in root/report.
package tsm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"
)

// DefaultRoot is where the kernel mounts configfs-tsm: the directory holding report/.
const DefaultRoot = configfsi.TsmPrefix

// MaxBlobSize caps what is read from the report interface.
const MaxBlobSize = 1 << 20

// Client returns a configfs client that maps configfs-tsm paths under root. root == DefaultRoot
// is the kernel's interface.
func Client(root string) configfsi.Client { return &rootClient{root: filepath.Clean(root)} }

type rootClient struct{ root string }

func (c *rootClient) path(p string) (string, error) {
	rest, ok := strings.CutPrefix(path.Clean(p), configfsi.TsmPrefix)
	if !ok || (rest != "" && !strings.HasPrefix(rest, "/")) {
		return "", fmt.Errorf("tsm: path %q outside %s", p, configfsi.TsmPrefix)
	}
	return filepath.Join(c.root, filepath.FromSlash(rest)), nil
}

func (c *rootClient) unpath(p string) string {
	rest, _ := strings.CutPrefix(p, c.root)
	return configfsi.TsmPrefix + filepath.ToSlash(rest)
}

func (c *rootClient) MkdirTemp(dir, pattern string) (string, error) {
	d, err := c.path(dir)
	if err != nil {
		return "", err
	}
	p, err := os.MkdirTemp(d, pattern)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("tsm: %s does not exist: the configfs-tsm root %s must be the directory that holds report/ (the kernel's is %s), and the kernel must offer configfs-tsm", d, c.root, DefaultRoot)
	}
	if err != nil {
		return "", err
	}
	return c.unpath(p), nil
}

func (c *rootClient) ReadFile(name string) ([]byte, error) {
	p, err := c.path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

func (c *rootClient) ReadDir(dirname string) ([]os.DirEntry, error) {
	p, err := c.path(dirname)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

func (c *rootClient) WriteFile(name string, contents []byte) error {
	p, err := c.path(name)
	if err != nil {
		return err
	}
	return os.WriteFile(p, contents, 0o220)
}

func (c *rootClient) RemoveAll(name string) error {
	p, err := c.path(name)
	if err != nil {
		return err
	}
	return os.Remove(p) // configfs entries are removed with rmdir, like the kernel client
}

// Get asks the report interface for a report binding inblob, checks the provider and returns
// the outblob and the auxblob (when aux is set).
func Get(c configfsi.Client, inblob []byte, provider string, aux bool) (out, auxblob []byte, err error) {
	resp, err := report.Get(c, &report.Request{InBlob: inblob, GetAuxBlob: aux})
	if err != nil {
		return nil, nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	if p := strings.TrimSpace(resp.Provider); p != provider {
		return nil, nil, fmt.Errorf("configfs-tsm report: provider is %q, want %q", p, provider)
	}
	if len(resp.OutBlob) > MaxBlobSize || len(resp.AuxBlob) > MaxBlobSize {
		return nil, nil, fmt.Errorf("configfs-tsm report: blob larger than %d bytes", MaxBlobSize)
	}
	return resp.OutBlob, resp.AuxBlob, nil
}
