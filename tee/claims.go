package tee

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Claims are what verified evidence says about the TEE that produced it.
type Claims struct {
	Type Type `json:"type"`
	// Simulated is true for evidence without hardware protection. It is shown wherever claims are.
	Simulated bool `json:"simulated"`
	// Measurement is the primary measurement in hex: the TD's MRTD, the SNP launch measurement,
	// the SGX MRENCLAVE or the simulated measurement.
	Measurement string `json:"measurement"`
	// Registers holds every named measurement register in hex (for TDX mrtd, rtmr0…rtmr3,
	// mrconfigid, mrowner, mrownerconfig; for SNP measurement, hostdata).
	Registers map[string]string `json:"registers,omitempty"`
	Debug     bool              `json:"debug"`
	// TCB is the platform's security version in hex (TDX TEE_TCB_SVN, SNP reported TCB).
	TCB        string `json:"tcb,omitempty"`
	ReportData string `json:"report_data"`
}

// String is a one-line summary that always says when the evidence is simulated.
func (c *Claims) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s measurement %s", c.Type, c.Measurement)
	if c.TCB != "" {
		fmt.Fprintf(&b, " tcb %s", c.TCB)
	}
	if c.Debug {
		b.WriteString(" DEBUG")
	}
	if c.Simulated {
		b.WriteString(" SIMULATED (no hardware protection)")
	}
	return b.String()
}

// reportDataPrefix domain-separates every report data Styx binds.
const reportDataPrefix = "styx report data v1\x00"

// ReportData derives the 64 bytes of report data that bind parts for a purpose:
//
//	SHA-512("styx report data v1" || 0x00 || purpose || 0x00 || for each part: uint32be(len) || part)
//
// Length prefixes make the encoding injective; the purpose keeps evidence for one protocol from
// passing in another.
func ReportData(purpose string, parts ...[]byte) [64]byte {
	h := sha512.New()
	h.Write([]byte(reportDataPrefix))
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	var n [4]byte
	for _, p := range parts {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	var out [64]byte
	h.Sum(out[:0])
	return out
}

// CheckReportData compares the report data of evidence with the expected value.
func CheckReportData(t Type, got []byte, want [64]byte) error {
	if subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return Refuse(t, ErrReportData, "evidence binds %s, want %s", shortHex(got), shortHex(want[:]))
	}
	return nil
}

func shortHex(b []byte) string {
	s := hex.EncodeToString(b)
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}
