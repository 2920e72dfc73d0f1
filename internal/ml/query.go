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
	idx, err := m.Columns(header)
	if err != nil {
		return nil, err
	}
	return m.AppendAnswer(nil, idx, len(header), values)
}

// Columns returns, for each of m's features in order, its column in a query table with
// this header. A serving program computes it once per header and reuses it.
func (m *Model) Columns(header []string) ([]int, error) {
	idx := make([]int, len(m.Features))
	for j, f := range m.Features {
		if idx[j] = slices.Index(header, f); idx[j] < 0 {
			return nil, fmt.Errorf("%w: query lacks feature %q", ErrFormat, f)
		}
	}
	return idx, nil
}

// AppendAnswer appends to dst the answer to a query table of width columns (row-major
// values) whose feature columns idx gives (see [Model.Columns]): the bytes [Model.Answer]
// returns for the same rows, computed without copying a row.
func (m *Model) AppendAnswer(dst []byte, idx []int, width int, values []float64) ([]byte, error) {
	if width == 0 || len(values)%width != 0 || len(values) == 0 || len(values)/width > MaxQueryRows {
		return nil, fmt.Errorf("%w: query table of %d values for %d columns", ErrFormat, len(values), width)
	}
	if len(idx) != len(m.Features) {
		return nil, fmt.Errorf("%w: %d feature columns for %d features", ErrFormat, len(idx), len(m.Features))
	}
	b := append(dst, `{"predictions":[`...)
	for i := 0; i < len(values); i += width {
		row := values[i : i+width]
		s := m.Bias             // as Score, on the row's feature columns
		for j, c := range idx { // checked here, not in a loop of its own: guest loops are dear
			if uint(c) >= uint(width) {
				return nil, fmt.Errorf("%w: feature column %d of %d", ErrFormat, c, width)
			}
			s += m.Weights[j] * (row[c] - m.Mean[j]) / m.Std[j]
		}
		if b = appendPrediction(b, i > 0, s); b == nil {
			return nil, fmt.Errorf("%w: score of row %d is not finite", ErrFormat, i/width)
		}
	}
	return append(b, "]}"...), nil
}

func (m *Model) answerRows(rows [][]float64) ([]byte, error) {
	b := append(make([]byte, 0, 32*len(rows)+20), `{"predictions":[`...)
	for i, x := range rows {
		if b = appendPrediction(b, i > 0, m.Score(x)); b == nil {
			return nil, fmt.Errorf("%w: score of row %d is not finite", ErrFormat, i)
		}
	}
	return append(b, "]}"...), nil
}

// appendPrediction appends one prediction of score s (its label is Predict's: 1 if s >= 0),
// after a comma if comma; it returns nil for a score that is not finite.
func appendPrediction(b []byte, comma bool, s float64) []byte {
	if !finite(s) {
		return nil
	}
	if comma {
		b = append(b, ',')
	}
	label := `{"label":0,"score":`
	if s >= 0 {
		label = `{"label":1,"score":`
	}
	b = strconv.AppendFloat(append(b, label...), s, 'g', -1, 64)
	return append(b, '}')
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
