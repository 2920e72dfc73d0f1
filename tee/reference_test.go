package tee

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

var hex48 = strings.Repeat("ab", 48)

func TestParseReferenceValues(t *testing.T) {
	tests := []struct {
		name, in string
		err      string // "" for success
	}{
		{"empty object", `{}`, ""},
		{"tdx", `{"tee":{"tdx":{"measurements":[{"mrtd":"` + hex48 + `"}],"min_tcb":"` + strings.Repeat("00", 16) + `"}}}`, ""},
		{"tdx with rtmrs", `{"tee":{"tdx":{"measurements":[{"mrtd":"` + hex48 + `","rtmr0":"` + hex48 + `"}]}}}`, ""},
		{"snp", `{"allow_debug":true,"tee":{"snp":{"measurements":[{"measurement":"` + hex48 + `"}],"min_tcb":"0300000000000008"}}}`, ""},
		{"sim allowed", `{"allow_simulated":true}`, ""},
		{"unknown field", `{"allow_simulation":true}`, "unknown field"},
		{"unknown type", `{"tee":{"sev":{}}}`, "unknown tee type"},
		{"null type", `{"tee":{"tdx":null}}`, "null entry"},
		{"trailing data", `{} {}`, "trailing data"},
		{"not json", `allow_simulated: true`, "invalid character"},
		{"missing primary", `{"tee":{"tdx":{"measurements":[{"rtmr0":"` + hex48 + `"}]}}}`, `must name "mrtd"`},
		{"unknown register", `{"tee":{"tdx":{"measurements":[{"mrtd":"` + hex48 + `","pcr0":"00"}]}}}`, "unknown register"},
		{"short hex", `{"tee":{"tdx":{"measurements":[{"mrtd":"abcd"}]}}}`, "48 bytes"},
		{"uppercase hex", `{"tee":{"tdx":{"measurements":[{"mrtd":"` + strings.ToUpper(hex48) + `"}]}}}`, "lowercase"},
		{"bad tcb size", `{"tee":{"snp":{"min_tcb":"00"}}}`, "min_tcb"},
		{"tcb on sim", `{"tee":{"sim":{"min_tcb":"00"}}}`, "min_tcb"},
		{"wrong type", `{"allow_debug":"yes"}`, "cannot unmarshal"},
		{"array", `[]`, "want a JSON object"},
		{"null", `null`, "want a JSON object"},
		{"other capitalisation", `{"ALLOW_SIMULATED":true}`, `unknown field "ALLOW_SIMULATED" in top level (field names are exact: allow_debug, allow_simulated, tee)`},
		{"capitalised tee", `{"Tee":{}}`, `unknown field "Tee"`},
		{"capitalised nested field", `{"tee":{"tdx":{"Measurements":[]}}}`, `unknown field "Measurements"`},
		{"case-folded field", `{"allow_ſimulated":true}`, "unknown field"},
		{"capitalised type", `{"tee":{"TDX":{}}}`, "unknown tee type"},
		{"capitalised register", `{"tee":{"tdx":{"measurements":[{"MRTD":"` + hex48 + `"}]}}}`, `must name "mrtd"`},
		{"duplicate key", `{"allow_debug":false,"allow_debug":true}`, `key "allow_debug" twice in top level`},
		{"duplicate after other case", `{"allow_simulated":false,"ALLOW_SIMULATED":true}`, "unknown field"},
		{"duplicate type", `{"tee":{"tdx":{},"tdx":{"measurements":[{"mrtd":"` + hex48 + `"}]}}}`, `key "tdx" twice in "tee"`},
		{"duplicate min_tcb", `{"tee":{"snp":{"min_tcb":"0000000000000000","min_tcb":"0000000000000009"}}}`, `key "min_tcb" twice in "snp"`},
		{"duplicate register", `{"tee":{"tdx":{"measurements":[{"mrtd":"` + hex48 + `","mrtd":"` + strings.Repeat("cd", 48) + `"}]}}}`, `key "mrtd" twice`},
		{"unknown nested field", `{"tee":{"tdx":{"min_tcb":"` + strings.Repeat("00", 16) + `","max_tcb":"00"}}}`, `unknown field "max_tcb"`},
		{"trailing garbage", `{"allow_debug":true} x`, "trailing data"},
		{"trailing array", `{}[]`, "trailing data"},
		{"deep nesting", `{"tee":{"tdx":{"measurements":[{"mrtd":[[[[[[[[[[]]]]]]]]]]}]}}}`, "nested more than"},
		{"truncated", `{"tee":{"tdx":`, "EOF"},
		{"too big", `{"tee":{}}` + strings.Repeat(" ", MaxReferenceSize), "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv, err := ParseReferenceValues([]byte(tt.in))
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				again, err := ParseReferenceValues(rv.Marshal())
				if err != nil || !bytes.Equal(again.Marshal(), rv.Marshal()) {
					t.Fatalf("marshal round trip: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %v, want malformed saying %q", err, tt.err)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	ref := &ReferenceValues{TEE: map[Type]*TypeReference{
		TDX: {Measurements: []Measurement{{"mrtd": hex48, "rtmr1": hex48}}},
	}}
	good := &Claims{Type: TDX, Measurement: hex48, Registers: map[string]string{"mrtd": hex48, "rtmr1": hex48}}
	if err := ref.Check(good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		c    Claims
		ref  *ReferenceValues
		want error
	}{
		{"rtmr differs", Claims{Type: TDX, Measurement: hex48, Registers: map[string]string{"rtmr1": "00"}}, ref, ErrMeasurement},
		{"mrtd differs", Claims{Type: TDX, Measurement: "00", Registers: good.Registers}, ref, ErrMeasurement},
		{"debug", Claims{Type: TDX, Measurement: hex48, Registers: good.Registers, Debug: true}, ref, ErrDebug},
		{"type", Claims{Type: SNP, Measurement: hex48}, ref, ErrType},
		{"simulated strict", Claims{Type: Sim, Simulated: true}, ref, ErrSimulated},
		{"simulated claiming tdx", Claims{Type: TDX, Simulated: true, Measurement: hex48, Registers: good.Registers}, ref, ErrSimulated},
		{"nil reference", Claims{Type: TDX}, nil, ErrType},
		{"empty reference", Claims{Type: TDX}, &ReferenceValues{}, ErrType},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ref.Check(&tc.c)
			var ve *VerifyError
			if !errors.Is(err, tc.want) || !errors.As(err, &ve) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	sim := &Claims{Type: Sim, Simulated: true, Measurement: strings.Repeat("11", 32)}
	if err := (&ReferenceValues{AllowSimulated: true}).Check(sim); err != nil {
		t.Errorf("simulated with allow_simulated and no sim list: %v", err)
	}
	pinned := &ReferenceValues{AllowSimulated: true, TEE: map[Type]*TypeReference{
		Sim: {Measurements: []Measurement{{"measurement": strings.Repeat("22", 32)}}}}}
	if err := pinned.Check(sim); !errors.Is(err, ErrMeasurement) {
		t.Errorf("simulated with another pinned measurement: %v", err)
	}
}

func TestReportDataDomainSeparated(t *testing.T) {
	a := ReportData("p", []byte("ab"), []byte("c"))
	seen := map[string][64]byte{"a": a}
	for name, rd := range map[string][64]byte{
		"split":   ReportData("p", []byte("a"), []byte("bc")),
		"purpose": ReportData("q", []byte("ab"), []byte("c")),
		"joined":  ReportData("p", []byte("abc")),
		"extra":   ReportData("p", []byte("ab"), []byte("c"), nil),
	} {
		for other, v := range seen {
			if v == rd {
				t.Errorf("%s collides with %s", name, other)
			}
		}
		seen[name] = rd
	}
	if ReportData("p", []byte("ab"), []byte("c")) != a {
		t.Error("not deterministic")
	}
	if err := CheckReportData(Sim, a[:], a); err != nil {
		t.Error(err)
	}
	if err := CheckReportData(Sim, a[:63], a); !errors.Is(err, ErrReportData) {
		t.Errorf("short report data: %v", err)
	}
}

func FuzzParseReferenceValues(f *testing.F) {
	f.Add([]byte(`{"tee":{"tdx":{"measurements":[{"mrtd":"` + hex48 + `"}],"min_tcb":"` + strings.Repeat("00", 16) + `"}}}`))
	f.Add([]byte(`{"allow_simulated":true,"tee":{"sim":{"measurements":[{"measurement":"` + strings.Repeat("00", 32) + `"}]}}}`))
	f.Add([]byte(`{"tee":{"snp":{"measurements":[{"measurement":"` + hex48 + `","hostdata":"` + strings.Repeat("00", 32) + `"}]}}}`))
	f.Add([]byte(`{"ALLOW_SIMULATED":true}`))
	f.Add([]byte(`{"allow_debug":false,"allow_debug":true}`))
	f.Add([]byte(`{"tee":{"tdx":{"measurements":[{"mrtd":"` + hex48 + `","mrtd":"` + hex48 + `"}]}}}`))
	f.Add([]byte(`{"tee":{"tdx":{"Measurements":[]}}}`))
	f.Add([]byte(`{"allow_simulated":true} {}`))
	f.Add([]byte(`{"tee":{"sim":{"measurements":[[[[{}]]]]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rv, err := ParseReferenceValues(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		// What parses is one valid JSON value.
		var generic any
		if json.Unmarshal(data, &generic) != nil {
			t.Fatal("accepted input that is not JSON")
		}
		m := rv.Marshal()
		again, err := ParseReferenceValues(m)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		if !bytes.Equal(again.Marshal(), m) {
			t.Fatal("canonical form not stable")
		}
		_ = rv.Check(&Claims{Type: TDX, Measurement: hex48})
	})
}

func TestLoadReferenceValues(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/ref.json"
	os.WriteFile(good, []byte(`{"tee":{"snp":{"measurements":[{"measurement":"`+hex48+`"}],"min_tcb":"0102030400000005"}}}`), 0o644)
	rv, err := LoadReferenceValues(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := rv.MinTCB(SNP); len(got) != 8 || got[0] != 1 || got[7] != 5 {
		t.Errorf("min tcb %x", got)
	}
	if rv.MinTCB(TDX) != nil || (*ReferenceValues)(nil).MinTCB(SNP) != nil {
		t.Error("min tcb for an unlisted type")
	}
	bad := dir + "/bad.json"
	os.WriteFile(bad, []byte(`{"tee":{"snp":{"min_tcb":"zz"}}}`), 0o644)
	if _, err := LoadReferenceValues(bad); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad file: %v", err)
	}
	if _, err := LoadReferenceValues(dir + "/missing.json"); err == nil {
		t.Error("missing file accepted")
	}
}

func TestCheckMessages(t *testing.T) {
	ref := &ReferenceValues{AllowSimulated: true, TEE: map[Type]*TypeReference{
		TDX: {Measurements: []Measurement{{"mrtd": hex48}}},
		SNP: {Measurements: []Measurement{{"measurement": hex48, "hostdata": strings.Repeat("00", 32)}}},
	}}
	err := ref.Check(&Claims{Type: SGX, Measurement: "00"})
	if err == nil || !strings.Contains(err.Error(), "[sim snp tdx]") {
		t.Errorf("accepted types not listed: %v", err)
	}
	snp := &Claims{Type: SNP, Measurement: hex48, Registers: map[string]string{"measurement": hex48, "hostdata": strings.Repeat("00", 32)}}
	if err := ref.Check(snp); err != nil {
		t.Error(err)
	}
	snp.Registers["hostdata"] = strings.Repeat("11", 32)
	if err := ref.Check(snp); !errors.Is(err, ErrMeasurement) || !strings.Contains(err.Error(), "measurement "+hex48+" is not listed") {
		t.Errorf("hostdata mismatch: %v", err)
	}
	// A second listed set can match where the first does not.
	ref.TEE[SNP].Measurements = append(ref.TEE[SNP].Measurements, Measurement{"measurement": hex48})
	if err := ref.Check(snp); err != nil {
		t.Errorf("second set: %v", err)
	}
	// The Claims summary always shows simulation and debug.
	c := &Claims{Type: Sim, Measurement: "ab", Simulated: true, Debug: true, TCB: "01"}
	if s := c.String(); !strings.Contains(s, "SIMULATED") || !strings.Contains(s, "DEBUG") || !strings.Contains(s, "tcb 01") {
		t.Errorf("summary %q", s)
	}
}

func TestVerifiersDispatch(t *testing.T) {
	_, err := Verifiers{}.Verify(Evidence{Type: TDX}, &ReferenceValues{}, [64]byte{})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
	if Type("tpm").Valid() || !SGX.Valid() {
		t.Error("Valid")
	}
	err = Guard(TDX, "parser", func() error { panic("boom") })
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("guard: %v", err)
	}
}
