package ml

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// MaxQueryRows caps the rows of one query.
const MaxQueryRows = 10000

// Prediction is the answer for one query row.
type Prediction struct {
	Label float64 `json:"label"`
	Score float64 `json:"score"`
}

// Answer parses a query for m and returns its JSON answer {"predictions":[...]}. A query
// is either JSON {"rows":[{"feature": value, ...}, ...]} or CSV with a header row; extra
// columns (such as the label) are ignored, missing model features are an error.
func (m *Model) Answer(req []byte) ([]byte, error) {
	rows, err := m.ParseQuery(req)
	if err != nil {
		return nil, err
	}
	out := struct {
		Predictions []Prediction `json:"predictions"`
	}{make([]Prediction, len(rows))}
	for i, x := range rows {
		s := m.Score(x)
		out.Predictions[i] = Prediction{Label: m.Predict(x), Score: s}
	}
	return json.Marshal(out)
}

// ParseQuery returns the query's rows in the model's feature order.
func (m *Model) ParseQuery(req []byte) ([][]float64, error) {
	if t := bytes.TrimSpace(req); len(t) > 0 && t[0] == '{' {
		return m.parseJSONQuery(t)
	}
	return m.parseCSVQuery(req)
}

func (m *Model) parseJSONQuery(req []byte) ([][]float64, error) {
	var q struct {
		Rows []map[string]float64 `json:"rows"`
	}
	dec := json.NewDecoder(bytes.NewReader(req))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		return nil, fmt.Errorf("%w: query: %v", ErrFormat, err)
	}
	if len(q.Rows) == 0 || len(q.Rows) > MaxQueryRows {
		return nil, fmt.Errorf("%w: query with %d rows (1 to %d)", ErrFormat, len(q.Rows), MaxQueryRows)
	}
	rows := make([][]float64, len(q.Rows))
	for i, r := range q.Rows {
		rows[i] = make([]float64, len(m.Features))
		for j, f := range m.Features {
			v, ok := r[f]
			if !ok {
				return nil, fmt.Errorf("%w: query row %d lacks feature %q", ErrFormat, i, f)
			}
			rows[i][j] = v
		}
	}
	return rows, nil
}

func (m *Model) parseCSVQuery(req []byte) ([][]float64, error) {
	cr := csv.NewReader(bytes.NewReader(req))
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: query header: %v", ErrFormat, err)
	}
	idx := make([]int, len(m.Features))
	for j, f := range m.Features {
		if idx[j] = slices.Index(header, f); idx[j] < 0 {
			return nil, fmt.Errorf("%w: query lacks feature %q", ErrFormat, f)
		}
	}
	var rows [][]float64
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: query: %v", ErrFormat, err)
		}
		if len(rows) == MaxQueryRows {
			return nil, fmt.Errorf("%w: query with more than %d rows", ErrFormat, MaxQueryRows)
		}
		x := make([]float64, len(idx))
		for j, c := range idx {
			if x[j], err = parseFinite(rec[c]); err != nil {
				return nil, err
			}
		}
		rows = append(rows, x)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%w: query without rows", ErrFormat)
	}
	return rows, nil
}
