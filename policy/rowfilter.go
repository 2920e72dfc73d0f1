package policy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A RowFilter is a safe row predicate: column op literal. There is no code: a column name, one of
// == != < <= > >=, and a number or a quoted string.
type RowFilter struct {
	Column string
	Op     string
	Text   string  // the literal as written (unquoted for strings)
	Num    float64 // the literal, when numeric
	IsNum  bool
}

const maxRowFilter = 512

var rowOps = []string{"==", "!=", "<=", ">=", "<", ">"}

// ParseRowFilter parses a row filter such as `age >= 18` or `country == "CH"`. A column name with
// spaces is written in double quotes; a string literal in single or double quotes.
func ParseRowFilter(src string) (RowFilter, error) {
	var f RowFilter
	if len(src) > maxRowFilter {
		return f, fmt.Errorf("row filter is %d bytes, more than %d", len(src), maxRowFilter)
	}
	s := strings.TrimSpace(src)
	col, rest, err := readColumn(s)
	if err != nil {
		return f, fmt.Errorf("row filter %q: %v", src, err)
	}
	f.Column = col
	rest = strings.TrimSpace(rest)
	for _, op := range rowOps {
		if strings.HasPrefix(rest, op) {
			f.Op = op
			rest = strings.TrimSpace(rest[len(op):])
			break
		}
	}
	if f.Op == "" {
		return f, fmt.Errorf("row filter %q: want an operator (== != < <= > >=) after the column", src)
	}
	if err := f.readLiteral(rest); err != nil {
		return f, fmt.Errorf("row filter %q: %v", src, err)
	}
	return f, nil
}

func readColumn(s string) (col, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		end := strings.IndexByte(s[1:], '"')
		if end <= 0 {
			return "", "", fmt.Errorf("unterminated or empty quoted column name")
		}
		return s[1 : end+1], s[end+2:], nil
	}
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", fmt.Errorf("want a column name first")
	}
	return s[:i], s[i:], nil
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func (f *RowFilter) readLiteral(s string) error {
	if s == "" {
		return fmt.Errorf("want a literal after %s", f.Op)
	}
	if q := s[0]; q == '"' || q == '\'' {
		if len(s) < 2 || s[len(s)-1] != q || strings.IndexByte(s[1:len(s)-1], q) >= 0 {
			return fmt.Errorf("want one quoted string, got %s", s)
		}
		f.Text = s[1 : len(s)-1]
		return nil
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return fmt.Errorf("want a number or a quoted string, got %s", s)
	}
	f.Text, f.Num, f.IsNum = s, n, true
	return nil
}

// MarshalText renders the filter as text.
func (f RowFilter) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// String renders the filter in the syntax ParseRowFilter accepts.
func (f RowFilter) String() string {
	col := f.Column
	for i := 0; i < len(col); i++ {
		if !isNameByte(col[i]) {
			col = `"` + col + `"`
			break
		}
	}
	if f.IsNum {
		return col + " " + f.Op + " " + f.Text
	}
	q := `"`
	if strings.Contains(f.Text, `"`) {
		q = "'"
	}
	return col + " " + f.Op + " " + q + f.Text + q
}

// Match reports whether a cell value satisfies the filter. A numeric filter on a cell that is not a
// number does not match (fail closed).
func (f RowFilter) Match(cell string) bool {
	var c int
	if f.IsNum {
		v, err := strconv.ParseFloat(strings.TrimSpace(cell), 64)
		if err != nil || math.IsNaN(v) {
			return false
		}
		c = cmpFloat(v, f.Num)
	} else {
		c = strings.Compare(cell, f.Text)
	}
	switch f.Op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	default:
		return c >= 0
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
