package policy

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// InputRules flattens the input rules of every source, in source order.
func (o Obligations) InputRules() []InputRule {
	var rules []InputRule
	for _, s := range o.Input {
		rules = append(rules, s.Rules...)
	}
	return rules
}

// FilterCSV applies input rules to a CSV stream whose first row names the columns and returns the
// filtered CSV stream. A column reaches the output only if every rule keeps it (a rule with Keep
// keeps only those columns) and no rule drops it; a row only if every row filter of every rule
// holds. It reads one record at a time and never buffers the whole input. A row filter naming a
// column the header lacks, a ragged row or malformed CSV make Read fail with ErrInputRule, so a
// program never sees data that was not filtered.
func FilterCSV(r io.Reader, rules []InputRule) io.Reader {
	lim := &recordLimiter{r: r}
	cr := csv.NewReader(lim)
	cr.ReuseRecord = true
	f := &csvFilter{in: cr, lim: lim, rules: rules}
	f.out = csv.NewWriter(&f.buf)
	return f
}

// MaxCSVRecord caps the bytes of one CSV record (one row, quoted newlines included) that
// FilterCSV reads, so a malformed or hostile payload cannot make it buffer without bound.
const MaxCSVRecord = 1 << 20

// recordLimiter fails reads once more than MaxCSVRecord bytes (plus csv's read-ahead) were read
// since the last record boundary.
type recordLimiter struct {
	r io.Reader
	n int
}

func (l *recordLimiter) Read(p []byte) (int, error) {
	if l.n > MaxCSVRecord+64<<10 {
		return 0, fmt.Errorf("policy: input: a CSV record is longer than %d bytes: %w", MaxCSVRecord, ErrInputRule)
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

type csvFilter struct {
	in      *csv.Reader
	lim     *recordLimiter
	rules   []InputRule
	buf     bytes.Buffer
	out     *csv.Writer
	keep    []int // column indices that reach the output
	filters []boundFilter
	started bool
	err     error
	row     []string
}

type boundFilter struct {
	col int
	f   RowFilter
}

func (f *csvFilter) Read(p []byte) (int, error) {
	for f.buf.Len() == 0 && f.err == nil {
		f.err = f.next()
	}
	if f.buf.Len() > 0 {
		return f.buf.Read(p)
	}
	return 0, f.err
}

// next reads one record and writes it to buf if it passes.
func (f *csvFilter) next() error {
	rec, err := f.in.Read()
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err != nil {
		if errors.Is(err, ErrInputRule) {
			return err
		}
		return fmt.Errorf("policy: input: %v: %w", err, ErrInputRule)
	}
	f.lim.n = 0
	if !f.started {
		f.started = true
		if err := f.header(rec); err != nil {
			return err
		}
	} else if !f.pass(rec) {
		return nil
	}
	f.row = f.row[:0]
	for _, i := range f.keep {
		f.row = append(f.row, rec[i])
	}
	if err := f.out.Write(f.row); err != nil {
		return err
	}
	f.out.Flush()
	return f.out.Error()
}

// header binds the rules to the header's columns. Column names match after trimming spaces and a
// leading byte-order mark, ignoring case: a drop rule must not miss "SSN " because the owner wrote
// "ssn".
func (f *csvFilter) header(cols []string) error {
	index := make(map[string]int, len(cols))
	names := make([]string, len(cols))
	for i, c := range cols {
		if i == 0 {
			c = strings.TrimPrefix(c, "\ufeff")
		}
		names[i] = columnKey(c)
		if _, dup := index[names[i]]; dup {
			return fmt.Errorf("policy: input: column %q appears twice in the header: %w", c, ErrInputRule)
		}
		index[names[i]] = i
	}
	for i, name := range names {
		if f.keeps(name) {
			f.keep = append(f.keep, i)
		}
	}
	for _, r := range f.rules {
		for _, rf := range r.Rows {
			i, ok := index[columnKey(rf.Column)]
			if !ok {
				return fmt.Errorf("policy: input: row filter %q names column %q, which the data lacks: %w", rf, rf.Column, ErrInputRule)
			}
			f.filters = append(f.filters, boundFilter{col: i, f: rf})
		}
	}
	return nil
}

func columnKey(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

func (f *csvFilter) keeps(col string) bool {
	listed := func(list []string) bool {
		return slices.ContainsFunc(list, func(c string) bool { return columnKey(c) == col })
	}
	for _, r := range f.rules {
		if len(r.Keep) > 0 && !listed(r.Keep) || listed(r.Drop) {
			return false
		}
	}
	return true
}

func (f *csvFilter) pass(rec []string) bool {
	for _, b := range f.filters {
		if !b.f.Match(rec[b.col]) {
			return false
		}
	}
	return true
}
