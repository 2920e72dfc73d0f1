package ml

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// LabelColumn is the default name of the label column: 0 (malignant) or 1 (benign) in the
// Wisconsin breast cancer data.
const LabelColumn = "diagnosis"

// Limits on what ReadCSV accepts; inputs are attacker-controlled in the guest.
const (
	MaxColumns = 1024
	MaxRows    = 1 << 22
	maxName    = 128
)

// ErrFormat reports a malformed CSV input or model.
var ErrFormat = errors.New("ml: bad format")

// WDBCFeatures names the 30 features of the Wisconsin diagnostic breast cancer data in the
// order of the raw file: means, standard errors, then "worst" values.
var WDBCFeatures = wdbcFeatures()

func wdbcFeatures() []string {
	base := []string{"radius", "texture", "perimeter", "area", "smoothness", "compactness",
		"concavity", "concave_points", "symmetry", "fractal_dimension"}
	var out []string
	for _, suffix := range []string{"mean", "se", "worst"} {
		for _, b := range base {
			out = append(out, b+"_"+suffix)
		}
	}
	return out
}

// Dataset is a dense table of numeric features (row-major) with a label column.
type Dataset struct {
	Features []string  // column names, in X's column order
	X        []float64 // Rows()*len(Features) values, row-major
	Labels   []float64 // one label per row: 0 or 1
}

// Rows returns the number of rows.
func (d *Dataset) Rows() int { return len(d.Labels) }

// Row returns row i's features (a view into X).
func (d *Dataset) Row(i int) []float64 {
	n := len(d.Features)
	return d.X[i*n : (i+1)*n : (i+1)*n]
}

// ReadCSV reads a CSV table with a header row of column names. The column named label
// holds 0 or 1; every other column is a numeric feature. Values must be finite numbers.
func ReadCSV(r io.Reader, label string) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: reading header: %v", ErrFormat, err)
	}
	li, feats, err := parseHeader(header, label)
	if err != nil {
		return nil, err
	}
	d := &Dataset{Features: feats}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if d.Rows() >= MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows", ErrFormat, MaxRows)
		}
		if err := d.appendRecord(rec, li); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
}

func parseHeader(header []string, label string) (int, []string, error) {
	if len(header) > MaxColumns {
		return 0, nil, fmt.Errorf("%w: %d columns, at most %d", ErrFormat, len(header), MaxColumns)
	}
	li := -1
	var feats []string
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == "" || len(h) > maxName || seen[h] {
			return 0, nil, fmt.Errorf("%w: column %d: empty, too long or repeated name %.40q", ErrFormat, i, h)
		}
		seen[h] = true
		if h == label {
			li = i
			continue
		}
		feats = append(feats, h)
	}
	if li < 0 {
		return 0, nil, fmt.Errorf("%w: no label column %q", ErrFormat, label)
	}
	return li, feats, nil
}

func (d *Dataset) appendRecord(rec []string, li int) error {
	for i, s := range rec {
		v, err := parseFinite(s)
		if err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
		if i == li {
			if v != 0 && v != 1 {
				return fmt.Errorf("%w: label %v is not 0 or 1", ErrFormat, v)
			}
			d.Labels = append(d.Labels, v)
			continue
		}
		d.X = append(d.X, v)
	}
	return nil
}

func parseFinite(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: not a finite number: %.40q", ErrFormat, s)
	}
	return v, nil
}

// ReadWDBC reads the raw Wisconsin file: a first line of counts and class names (not
// column names), then 30 feature values and the label per line.
func ReadWDBC(r io.Reader) (*Dataset, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	first, err := cr.Read()
	if err != nil || len(first) < 2 {
		return nil, fmt.Errorf("%w: wdbc first line: %v", ErrFormat, err)
	}
	d := &Dataset{Features: slices.Clone(WDBCFeatures)}
	li := len(WDBCFeatures)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return d, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if len(rec) != li+1 {
			return nil, fmt.Errorf("%w: wdbc row with %d fields", ErrFormat, len(rec))
		}
		if err := d.appendRecord(rec, li); err != nil {
			return nil, err
		}
	}
}

// WriteCSV writes d with a header row; the label column comes last, named label.
func (d *Dataset) WriteCSV(w io.Writer, label string) error {
	cw := csv.NewWriter(w)
	rec := append(slices.Clone(d.Features), label)
	if err := cw.Write(rec); err != nil {
		return err
	}
	for i := range d.Rows() {
		rec = rec[:0]
		for _, v := range d.Row(i) {
			rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
		}
		rec = append(rec, strconv.FormatFloat(d.Labels[i], 'g', -1, 64))
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// FromTable builds a dataset from a header and row-major values (for example a table
// parsed by the sandbox host); the column named label must hold 0 or 1. It takes
// ownership of values: the features are compacted in place, without a copy.
func FromTable(header []string, values []float64, label string) (*Dataset, error) {
	li, feats, err := parseHeader(header, label)
	if err != nil {
		return nil, err
	}
	w := len(header)
	if len(values)%w != 0 {
		return nil, fmt.Errorf("%w: %d values for %d columns", ErrFormat, len(values), w)
	}
	rows := len(values) / w
	if rows > MaxRows {
		return nil, fmt.Errorf("%w: more than %d rows", ErrFormat, MaxRows)
	}
	d := &Dataset{Features: feats, Labels: make([]float64, rows)}
	for r := range rows {
		if l := values[r*w+li]; l == 0 || l == 1 {
			d.Labels[r] = l
		} else {
			return nil, fmt.Errorf("%w: row %d: label %v is not 0 or 1", ErrFormat, r, l)
		}
	}
	out := 0 // write position; never passes the read position, so copy is safe in place
	for r := range rows {
		row := values[r*w : (r+1)*w]
		out += copy(values[out:], row[:li])
		out += copy(values[out:], row[li+1:])
	}
	d.X = values[:out:out]
	return d, nil
}

// LabelIndex returns the index of the label column in header and the feature names, in
// order, or an error if the header is not valid.
func LabelIndex(header []string, label string) (int, []string, error) {
	return parseHeader(header, label)
}

// FromColumns builds a dataset from features (row-major, len(features) per row) and
// labels (0 or 1) already split apart; it takes ownership of both slices.
func FromColumns(features []string, x, labels []float64) (*Dataset, error) {
	if len(x) != len(labels)*len(features) || len(labels) > MaxRows {
		return nil, fmt.Errorf("%w: %d values for %d rows of %d features", ErrFormat, len(x), len(labels), len(features))
	}
	for i, l := range labels {
		if l != 0 && l != 1 {
			return nil, fmt.Errorf("%w: row %d: label %v is not 0 or 1", ErrFormat, i, l)
		}
	}
	return &Dataset{Features: slices.Clone(features), X: x, Labels: labels}, nil
}
