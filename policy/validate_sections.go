package policy

import (
	"fmt"
	"slices"
)

func (v *validator) inputRules(path string, raw []rawInputRule) []InputRule {
	rules := make([]InputRule, 0, len(raw))
	for i, r := range raw {
		p := fmt.Sprintf("%s.%d", path, i)
		ir := InputRule{Purposes: r.Purposes, Programs: r.Programs, Keep: r.Keep, Drop: r.Drop}
		for j, prog := range r.Programs {
			if !hexSHA256.MatchString(prog) {
				v.fail(fmt.Sprintf("%s.programs.%d", p, j), "want the lowercase hex sha256 of a program, got %q", prog)
			}
		}
		for j, purpose := range r.Purposes {
			if purpose == "" {
				v.fail(fmt.Sprintf("%s.purposes.%d", p, j), "empty purpose")
			}
		}
		if len(r.Keep) > 0 && len(r.Drop) > 0 {
			v.fail(p, "use keep or drop, not both")
		}
		if len(r.Keep) == 0 && len(r.Drop) == 0 && len(r.Rows) == 0 {
			v.fail(p, "input rule does nothing: give keep, drop or rows")
		}
		v.columns(p+".keep", r.Keep)
		v.columns(p+".drop", r.Drop)
		for j, src := range r.Rows {
			f, err := ParseRowFilter(src)
			if err != nil {
				v.fail(fmt.Sprintf("%s.rows.%d", p, j), "%v", err)
			}
			ir.Rows = append(ir.Rows, f)
		}
		v.mark(p)
		rules = append(rules, ir)
	}
	return rules
}

func (v *validator) columns(path string, cols []string) {
	for i, c := range cols {
		if c == "" {
			v.fail(fmt.Sprintf("%s.%d", path, i), "empty column name")
		}
		if slices.Contains(cols[:i], c) {
			v.fail(fmt.Sprintf("%s.%d", path, i), "column %q listed twice", c)
		}
	}
}

func (v *validator) output(path string, raw *rawOutput) OutputRules {
	var o OutputRules
	if raw == nil {
		return o
	}
	if raw.Kinds != nil {
		o.Kinds = []Kind{}
		v.mark(path + ".kinds")
	}
	for i, name := range raw.Kinds {
		k := Kind(name)
		if !k.valid() {
			v.fail(fmt.Sprintf("%s.kinds.%d", path, i), "unknown output kind %q (known: %s)", name, joinKinds(Kinds))
		}
		if !slices.Contains(o.Kinds, k) {
			o.Kinds = append(o.Kinds, k)
		}
	}
	if raw.MaxBytes != nil {
		if *raw.MaxBytes <= 0 {
			v.fail(path+".max_bytes", "must be positive (omit it for no limit)")
		}
		o.MaxBytes = *raw.MaxBytes
		v.mark(path + ".max_bytes")
	}
	if raw.MinAggregation != nil {
		if *raw.MinAggregation <= 0 {
			v.fail(path+".min_aggregation", "must be positive (omit it for no minimum)")
		}
		o.MinAggregation = *raw.MinAggregation
		v.mark(path + ".min_aggregation")
	}
	for i, r := range raw.Recipients {
		id := v.partyID(fmt.Sprintf("%s.recipients.%d", path, i), r)
		if !slices.Contains(o.Recipients, id) {
			o.Recipients = append(o.Recipients, id)
		}
	}
	return o
}

var teeTypes = []string{"tdx", "snp", "sgx", "sim"}

func (v *validator) tee(raw *rawTEE) TEERequirements {
	var t TEERequirements
	if raw == nil {
		return t
	}
	for i, typ := range raw.Types {
		if !slices.Contains(teeTypes, typ) {
			v.fail(fmt.Sprintf("tee.types.%d", i), "unknown TEE type %q (known: tdx, snp, sgx, sim)", typ)
		}
		if typ == "sim" && !raw.AllowSimulated {
			v.fail(fmt.Sprintf("tee.types.%d", i), "type sim requires allow_simulated: true")
		}
	}
	for i, m := range raw.Measurements {
		if !hexString.MatchString(m) {
			v.fail(fmt.Sprintf("tee.measurements.%d", i), "want a lowercase hex measurement, got %q", m)
		}
	}
	t.Types = raw.Types
	t.AllowSimulated = raw.AllowSimulated
	t.AllowDebug = raw.AllowDebug
	t.Measurements = raw.Measurements
	t.MinTCB = raw.MinTCB
	for _, f := range []string{"tee", "tee.types", "tee.allow_simulated", "tee.allow_debug", "tee.measurements", "tee.min_tcb"} {
		v.mark(f)
	}
	return t
}
