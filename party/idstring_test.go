package party

import (
	"strings"
	"testing"
)

// ID.String spells an id exactly as the checksum, base32 and lowercasing it stands for, and
// ParseID reads it back.
func TestIDStringIsTheSpecifiedSpelling(t *testing.T) {
	for i := range 64 {
		var id ID
		for j := range id {
			id[j] = byte(i*31 + j*7)
		}
		sum := checksum("styx id", id[:])
		want := IDPrefix + strings.ToLower(b32.EncodeToString(append(id[:], sum[:]...)))
		if got := id.String(); got != want {
			t.Fatalf("String() = %s, want %s", got, want)
		}
		if back, err := ParseID(want); err != nil || back != id {
			t.Fatalf("ParseID(%s) = %x, %v", want, back, err)
		}
	}
}
