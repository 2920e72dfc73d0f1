package cluster

import (
	"bytes"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/sim"
)

// testBundle makes a sim bundle.
func testBundle(t testing.TB) *Bundle {
	b, err := testBundleNode(t).Bundle(bytes.Repeat([]byte{1}, NonceSize))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testBundleNode(t testing.TB) *Node {
	dir := t.TempDir()
	s, err := sim.NewSealer(filepath.Join(dir, "seal.key"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := Init(Config{Dir: filepath.Join(dir, "n"), Attester: sim.New(goodMeasurement, false), Sealer: s})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestParseBundleStrict(t *testing.T) {
	b := testBundle(t)
	good := b.Marshal()
	if _, err := ParseBundle(good); err != nil {
		t.Fatal(err)
	}
	s := string(good)
	nonce := base64.StdEncoding.EncodeToString(b.Nonce)
	for name, in := range map[string]string{
		"empty":           "",
		"not canonical":   strings.Replace(s, `{"version":1,`, `{ "version":1,`, 1),
		"no newline":      strings.TrimSuffix(s, "\n"),
		"trailing data":   s + "{}",
		"unknown field":   strings.Replace(s, `{"version":1,`, `{"version":1,"extra":1,`, 1),
		"version 2":       strings.Replace(s, `{"version":1,`, `{"version":2,`, 1),
		"short nonce":     strings.Replace(s, nonce, base64.StdEncoding.EncodeToString(b.Nonce[:16]), 1),
		"bad identity":    strings.Replace(s, b.Cluster, "styx1abc", 1),
		"bad tls key":     strings.Replace(s, base64.StdEncoding.EncodeToString(b.TLSKey), "AAAA", 1),
		"unknown tee":     strings.Replace(s, `"type":"sim","data"`, `"type":"tpm","data"`, 1),
		"no claims":       strings.Replace(s, s[strings.Index(s, `,"claims":`):], "}\n", 1),
		"too big":         s + strings.Repeat(" ", MaxBundleSize),
		"json null":       "null\n",
		"array":           "[]\n",
		"duplicate field": strings.Replace(s, `{"version":1,`, `{"version":1,"version":1,`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseBundle([]byte(in)); !errors.Is(err, tee.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzParseBundle(f *testing.F) {
	b := testBundle(f)
	f.Add(b.Marshal())
	f.Add([]byte(`{"version":1}`))
	ref := &tee.ReferenceValues{AllowSimulated: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if !errors.Is(err, tee.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(b.Marshal(), data) {
			t.Fatal("accepted a non-canonical bundle")
		}
		_, c, err := b.Verify(ref, nil, nil)
		if err == nil && !c.Simulated {
			t.Fatal("fuzzed bundle verified as hardware")
		}
	})
}
