package tsm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootClient maps configfs-tsm paths onto a directory tree.
func TestRootClient(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "report"), 0o755)
	c := Client(root)
	entry, err := c.MkdirTemp(DefaultRoot+"/report", "entry")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(entry, DefaultRoot+"/report/entry") {
		t.Fatalf("entry %q not under the configfs prefix", entry)
	}
	if _, err := os.Stat(filepath.Join(root, "report", filepath.Base(entry))); err != nil {
		t.Fatal("entry not created under root")
	}
	if err := c.WriteFile(entry+"/inblob", []byte("x")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "report", filepath.Base(entry), "inblob"), 0o600)
	if b, err := c.ReadFile(entry + "/inblob"); err != nil || string(b) != "x" {
		t.Fatalf("%q %v", b, err)
	}
	if des, err := c.ReadDir(entry); err != nil || len(des) != 1 {
		t.Fatalf("%v %v", des, err)
	}
	for _, p := range []string{"/etc/passwd", "/sys/kernel/config/tsmx", "/sys/kernel/config/tsm/../../../../etc/passwd"} {
		if _, err := c.ReadFile(p); err == nil {
			t.Errorf("path %s outside the prefix accepted", p)
		}
	}
}

// TestWrongRoot: a root that does not hold report/ (here: the report directory itself, the
// mistake node.go once made) fails with an error naming the directory it expected.
func TestWrongRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "report"), 0o755)
	_, _, err := Get(Client(filepath.Join(root, "report")), make([]byte, 64), "tdx_guest", false)
	if err == nil {
		t.Fatal("report from a tree without report/")
	}
	want := filepath.Join(root, "report", "report") + " does not exist"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "holds report/") {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
