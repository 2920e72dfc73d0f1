package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styx-tee/styx/tee"
)

// TestDefaultTSMRoot: with no --tsm-root, a tdx node looks for reports where the kernel makes
// them, /sys/kernel/config/tsm/report, and says so when that is missing (as on this machine).
func TestDefaultTSMRoot(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/config/tsm"); err == nil {
		t.Skip("this machine has configfs-tsm")
	}
	dir := t.TempDir()
	rk := filepath.Join(dir, "recovery.key")
	os.WriteFile(rk, make([]byte, 32), 0o600)
	ref := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.TDX: {Measurements: []tee.Measurement{{"mrtd": strings.Repeat("00", 48)}}},
	}}
	_, err := Open(context.Background(), Config{DataDir: filepath.Join(dir, "node"), TEE: "tdx", RecoveryKeyFile: rk, Reference: ref})
	if err == nil {
		t.Fatal("tdx node opened without configfs-tsm")
	}
	if !strings.Contains(err.Error(), "/sys/kernel/config/tsm/report does not exist") {
		t.Fatalf("error does not name the kernel's report directory: %v", err)
	}
}
