package ml

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// A serving program answers a table with the feature columns it computed once and one
// reused buffer: the bytes are Answer's for the same CSV, query after query.
func TestAppendAnswerMatchesAnswer(t *testing.T) {
	d := loadWDBC(t)
	m, err := Train(Go{}, d, Config{Epochs: 3, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var csv bytes.Buffer
	if err := d.WriteCSV(&csv, LabelColumn); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(csv.String(), "\n")
	header := strings.Split(strings.TrimSpace(lines[0]), ",")
	idx, err := m.Columns(header)
	if err != nil {
		t.Fatal(err)
	}
	values := make([]float64, 0, 7*len(header))
	var buf []byte
	for rows := 1; rows <= 7; rows += 3 {
		values = values[:0]
		for i := range rows {
			for _, c := range header {
				if c == LabelColumn {
					values = append(values, d.Labels[i])
					continue
				}
				values = append(values, d.X[i*len(d.Features)+slices.Index(d.Features, c)])
			}
		}
		if buf, err = m.AppendAnswer(buf[:0], idx, len(header), values); err != nil {
			t.Fatal(err)
		}
		want, err := m.Answer([]byte(strings.Join(lines[:rows+1], "")))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, want) {
			t.Fatalf("%d rows: AppendAnswer %s, Answer %s", rows, buf, want)
		}
	}
	if _, err := m.AppendAnswer(nil, idx[:3], len(header), values); err == nil {
		t.Error("answered with too few feature columns")
	}
	bad := append([]int(nil), idx...)
	bad[0] = len(header)
	if _, err := m.AppendAnswer(nil, bad, len(header), values); err == nil {
		t.Error("answered with a feature column outside the table")
	}
}
