package ml

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
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
	return m.answerRows(rows)
}

// AnswerTable answers a query already parsed as a table (header and row-major values,
// for example by the sandbox host); columns are matched by name as in [Model.Answer].
func (m *Model) AnswerTable(header []string, values []float64) ([]byte, error) {
	w := len(header)
	if w == 0 || len(values)%w != 0 || len(values) == 0 || len(values)/w > MaxQueryRows {
		return nil, fmt.Errorf("%w: query table of %d values for %d columns", ErrFormat, len(values), w)
	}
	idx := make([]int, len(m.Features))
	for j, f := range m.Features {
		if idx[j] = slices.Index(header, f); idx[j] < 0 {
			return nil, fmt.Errorf("%w: query lacks feature %q", ErrFormat, f)
		}
	}
	rows := make([][]float64, len(values)/w)
	for i := range rows {
		rows[i] = make([]float64, len(idx))
		for j, c := range idx {
			rows[i][j] = values[i*w+c]
		}
	}
	return m.answerRows(rows)
}

func (m *Model) answerRows(rows [][]float64) ([]byte, error) {
	b := append(make([]byte, 0, 32*len(rows)+20), `{"predictions":[`...)
	for i, x := range rows {
		if i > 0 {
			b = append(b, ',')
		}
		s := m.Score(x)
		if !finite(s) {
			return nil, fmt.Errorf("%w: score of row %d is not finite", ErrFormat, i)
		}
		b = append(b, `{"label":`...)
		b = strconv.AppendFloat(b, m.Predict(x), 'g', -1, 64)
		b = append(b, `,"score":`...)
		b = strconv.AppendFloat(b, s, 'g', -1, 64)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
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
