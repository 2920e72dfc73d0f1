package tee

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestKeySealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewKeySealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("cluster secret"), "cluster")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("cluster secret")) {
		t.Fatal("plaintext visible")
	}
	pt, err := s.Unseal(sealed, "cluster")
	if err != nil || string(pt) != "cluster secret" {
		t.Fatalf("unseal: %q, %v", pt, err)
	}
	other, _ := NewKeySealer(bytes.Repeat([]byte{8}, 32))
	for name, f := range map[string]func() ([]byte, error){
		"other label": func() ([]byte, error) { return s.Unseal(sealed, "tls") },
		"other key":   func() ([]byte, error) { return other.Unseal(sealed, "cluster") },
		"truncated":   func() ([]byte, error) { return s.Unseal(sealed[:10], "cluster") },
		"empty":       func() ([]byte, error) { return s.Unseal(nil, "cluster") },
		"flipped": func() ([]byte, error) {
			b := append([]byte{}, sealed...)
			b[len(b)-1] ^= 1
			return s.Unseal(b, "cluster")
		},
		"version": func() ([]byte, error) {
			b := append([]byte{}, sealed...)
			b[0] = 2
			return s.Unseal(b, "cluster")
		},
	} {
		if _, err := f(); !errors.Is(err, ErrUnseal) {
			t.Errorf("%s: got %v, want ErrUnseal", name, err)
		}
	}
	if _, err := NewKeySealer(key[:31]); err == nil {
		t.Error("short key accepted")
	}
	if got := fmt.Sprint(s.LogValue()); got != "sealing key (redacted)" {
		t.Errorf("LogValue %q", got)
	}
}
