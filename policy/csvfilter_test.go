package policy

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func mustRules(t *testing.T, specs ...string) []InputRule {
	t.Helper()
	var rules []InputRule
	for _, s := range specs {
		var r InputRule
		for _, part := range strings.Split(s, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "keep":
				r.Keep = strings.Split(v, ",")
			case "drop":
				r.Drop = strings.Split(v, ",")
			case "row":
				f, err := ParseRowFilter(v)
				if err != nil {
					t.Fatal(err)
				}
				r.Rows = append(r.Rows, f)
			}
		}
		rules = append(rules, r)
	}
	return rules
}

const patients = "id,name,age,diagnosis,radius\n1,Ann,17,B,12.5\n2,Bob,45,M,20.1\n3,\"Cruz, Jr.\",63,B,31\n4,Dee,n/a,M,9\n"

func TestFilterCSV(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		want  string
	}{
		{"no rules pass everything", nil, patients},
		{"drop", []string{"drop=name"}, "id,age,diagnosis,radius\n1,17,B,12.5\n2,45,M,20.1\n3,63,B,31\n4,n/a,M,9\n"},
		{"keep", []string{"keep=age,diagnosis"}, "age,diagnosis\n17,B\n45,M\n63,B\nn/a,M\n"},
		{"keep keeps header order", []string{"keep=diagnosis,id"}, "id,diagnosis\n1,B\n2,M\n3,B\n4,M\n"},
		{"keep of a missing column", []string{"keep=id,ssn"}, "id\n1\n2\n3\n4\n"},
		{"drop of a missing column", []string{"drop=ssn"}, patients},
		{"numeric row filter, non-numbers fail closed", []string{"row=age >= 18"}, "id,name,age,diagnosis,radius\n2,Bob,45,M,20.1\n3,\"Cruz, Jr.\",63,B,31\n"},
		{"string row filter", []string{`row=diagnosis == "M"`}, "id,name,age,diagnosis,radius\n2,Bob,45,M,20.1\n4,Dee,n/a,M,9\n"},
		{"not equal", []string{`row=diagnosis != 'M'`}, "id,name,age,diagnosis,radius\n1,Ann,17,B,12.5\n3,\"Cruz, Jr.\",63,B,31\n"},
		{"filters on dropped columns", []string{"drop=age,name;row=age < 50"}, "id,diagnosis,radius\n1,B,12.5\n2,M,20.1\n"},
		{"rules combine: keep intersect, drop union, rows and",
			[]string{"keep=id,age,radius;row=radius < 30", "drop=radius;row=age > 20"},
			"id,age\n2,45\n"},
		{"no row passes leaves the header", []string{"row=age > 1000"}, "id,name,age,diagnosis,radius\n"},
		{"float comparison", []string{"row=radius <= 12.5"}, "id,name,age,diagnosis,radius\n1,Ann,17,B,12.5\n4,Dee,n/a,M,9\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := io.ReadAll(FilterCSV(strings.NewReader(patients), mustRules(t, c.rules...)))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != c.want {
				t.Errorf("got\n%s\nwant\n%s", out, c.want)
			}
		})
	}
}

func TestFilterCSVErrors(t *testing.T) {
	cases := []struct{ name, in, rule, want string }{
		{"filter on a missing column", patients, "row=ssn == 'x'", `names column "ssn", which the data lacks`},
		{"ragged row", "a,b\n1,2\n3\n", "drop=a", "wrong number of fields"},
		{"bad quoting", "a,b\n\"1,2\n", "drop=a", "extraneous or missing"},
		{"duplicate header", "a,a\n1,2\n", "drop=b", `column "a" appears twice`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := io.ReadAll(FilterCSV(strings.NewReader(c.in), mustRules(t, c.rule)))
			if !errors.Is(err, ErrInputRule) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrInputRule containing %q", err, c.want)
			}
		})
	}
}

// TestFilterCSVColumnNamesAreForgiving: a byte-order mark, stray spaces or different case in the
// header must not let a dropped column through.
func TestFilterCSVColumnNamesAreForgiving(t *testing.T) {
	in := "\ufeffSSN , Name,age\r\n123, Ann ,40\r\n456,Bob,12\r\n"
	out, err := io.ReadAll(FilterCSV(strings.NewReader(in), mustRules(t, "drop=ssn;row=AGE > 18", "drop=name")))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "age\n40\n" {
		t.Fatalf("got %q", out)
	}
	out, err = io.ReadAll(FilterCSV(strings.NewReader(in), mustRules(t, "keep=Age")))
	if err != nil || string(out) != "age\n40\n12\n" {
		t.Fatalf("keep: got %q, %v", out, err)
	}
	if _, err := io.ReadAll(FilterCSV(strings.NewReader("a, A\n1,2\n"), mustRules(t, "drop=a"))); !errors.Is(err, ErrInputRule) {
		t.Fatalf("columns equal up to case and spaces must be refused as duplicates, got %v", err)
	}
}

func TestFilterCSVRecordCap(t *testing.T) {
	huge := io.MultiReader(strings.NewReader("a,b\n1,\""), &rowGen{n: 1 << 20}) // one quoted field that never ends
	_, err := io.Copy(io.Discard, FilterCSV(huge, mustRules(t, "drop=a")))
	if !errors.Is(err, ErrInputRule) || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("got %v", err)
	}
	// Many ordinary records add up to far more than the cap without tripping it.
	many := io.MultiReader(strings.NewReader("id,v\n"), &rowGen{n: 300000})
	if _, err := io.Copy(io.Discard, FilterCSV(many, mustRules(t, "drop=v"))); err != nil {
		t.Fatal(err)
	}
}

func TestFilterCSVEmptyInput(t *testing.T) {
	out, err := io.ReadAll(FilterCSV(strings.NewReader(""), mustRules(t, "drop=a")))
	if err != nil || len(out) != 0 {
		t.Fatalf("got %q, %v", out, err)
	}
}

// TestFilterCSVStreams checks that the filter reads incrementally: after one small read of the
// output, it has consumed only a little of a large input.
func TestFilterCSVStreams(t *testing.T) {
	const rows = 200000
	src := &countingReader{r: io.MultiReader(strings.NewReader("id,v\n"), &rowGen{n: rows})}
	f := FilterCSV(src, mustRules(t, "drop=v"))
	buf := make([]byte, 16)
	if _, err := io.ReadFull(f, buf); err != nil {
		t.Fatal(err)
	}
	if src.n > 64<<10 {
		t.Fatalf("read %d input bytes to produce 16 output bytes: not streaming", src.n)
	}
	n, err := io.Copy(io.Discard, f)
	if err != nil {
		t.Fatal(err)
	}
	if n < rows {
		t.Fatalf("only %d bytes out", n)
	}
}

func TestFilterCSVOneByteReads(t *testing.T) {
	out, err := io.ReadAll(iotest.OneByteReader(FilterCSV(iotest.HalfReader(strings.NewReader(patients)), mustRules(t, "keep=id"))))
	if err != nil || string(out) != "id\n1\n2\n3\n4\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type rowGen struct {
	i, n    int
	pending string
}

func (g *rowGen) Read(p []byte) (int, error) {
	if g.pending == "" {
		if g.i == g.n {
			return 0, io.EOF
		}
		g.pending = fmt.Sprintf("%d,%d\n", g.i, g.i*7)
		g.i++
	}
	n := copy(p, g.pending)
	g.pending = g.pending[n:]
	return n, nil
}

func TestParseRowFilter(t *testing.T) {
	good := map[string]string{
		"age >= 18":            "age >= 18",
		"  age>=18 ":           "age >= 18",
		`country == "CH"`:      `country == "CH"`,
		`country=='CH'`:        `country == "CH"`,
		`"blood type" != 'O+'`: `"blood type" != "O+"`,
		"radius < -1.5e2":      "radius < -1.5e2",
		`note == 'say "hi"'`:   `note == 'say "hi"'`,
		"x.y-z_1 > 0":          "x.y-z_1 > 0",
		`name <= ""`:           `name <= ""`,
	}
	for in, want := range good {
		f, err := ParseRowFilter(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if f.String() != want {
			t.Errorf("%q: String() = %q, want %q", in, f, want)
		}
		again, err := ParseRowFilter(f.String())
		if err != nil || again != f {
			t.Errorf("%q: does not round-trip: %v %v", in, again, err)
		}
	}
	bad := []string{"", "age", "age >", "age >> 3", "age = 3", ">= 3", "age >= NaN", "age >= Inf", "age >= x",
		`age == "a" "b"`, `age == "a`, `"" == 1`, `"open == 1`, "age >= len(x)", strings.Repeat("a", 600) + " > 1"}
	for _, in := range bad {
		if f, err := ParseRowFilter(in); err == nil {
			t.Errorf("%q parsed as %+v", in, f)
		}
	}
}

func TestRowFilterMatch(t *testing.T) {
	cases := []struct {
		filter, cell string
		want         bool
	}{
		{"a == 1", "1", true}, {"a == 1", "1.0", true}, {"a == 1", " 1 ", true}, {"a == 1", "2", false},
		{"a != 1", "2", true}, {"a != 1", "x", false}, {"a < 1", "0.5", true}, {"a < 1", "1", false},
		{"a <= 1", "1", true}, {"a > 1", "1", false}, {"a >= 1", "1", true}, {"a >= 1", "NaN", false},
		{"a > 1", "", false}, {"a == 'x'", "x", true}, {"a == 'x'", "X", false}, {"a < 'b'", "a", true},
		{"a > 'b'", "a", false}, {"a >= 'b'", "b", true}, {"a <= 'b'", "c", false}, {"a != 'b'", "", true},
	}
	for _, c := range cases {
		f, err := ParseRowFilter(c.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(c.cell); got != c.want {
			t.Errorf("%s on %q = %v, want %v", c.filter, c.cell, got, c.want)
		}
	}
}
