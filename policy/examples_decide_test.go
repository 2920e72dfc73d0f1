package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// exampleCase is one request on an example policy's Pad (sealed, or derived at distance 1 when
// kind is set), with the expected verdict and a text the explanation must contain.
type exampleCase struct {
	name   string
	kind   Kind
	req    Request
	allow  bool
	reason string
}

// runExampleCases decides every case against the example policy file and checks the verdict and
// the documented reason.
func runExampleCases(t *testing.T, file string, cases []exampleCase) {
	p := loadExample(t, file)
	for _, c := range cases {
		t.Run(file+"/"+c.name, func(t *testing.T) {
			ch := &Chain{Pad: PadRef{ID: file, Owner: p.Owner()}, Sources: []Source{{Pad: PadRef{ID: file}, Policy: p}}}
			if c.kind != "" {
				ch.Pad = PadRef{ID: "derived", Kind: c.kind, Depth: 1}
				ch.Sources[0].Distance = 1
			}
			d := NewEngine().Decide(ch, &c.req)
			if d.Allow != c.allow || !strings.Contains(d.Explain(), c.reason) {
				t.Errorf("want allow=%v with %q, got:\n%s", c.allow, c.reason, d.Explain())
			}
		})
	}
}

func mustID(t *testing.T, s string) party.ID {
	t.Helper()
	id, err := party.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestBankAggregatesExample: worked example 3 of docs/policy.md.
func TestBankAggregatesExample(t *testing.T) {
	bank := mustID(t, "styxid1kcxbk4i6lmvqyrphw5pyfvx5mbllpy3hpdnbrvu72644zb7vafl5hv4exa")
	analyst := mustID(t, "styxid1mwf3hyk6mp2stsiazltsuwkgpjxc2yjiwtz762rm4xkbfptwo6vepmktj4")
	stranger := testID("stranger")
	stats := "df2862bd23a398529cac131e40c7e5293f6b4dade83c24e3f4326454968effcc"
	now := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	tdx := TEEClaims{Type: "tdx", TCB: 2}
	use := func(mod func(*Request)) Request {
		r := Request{Principal: analyst, Action: ActionUse, Now: now, Purpose: "fraud-statistics", Program: stats, TEE: tdx,
			Output: &OutputClaim{Kind: KindAggregate, Bytes: 1000, Aggregation: 50}}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	release := func(who party.ID, to ...party.ID) Request {
		return Request{Principal: who, Action: ActionRelease, Now: now, TEE: tdx, Output: &OutputClaim{Kind: KindAggregate, Bytes: 1000, Recipients: to}}
	}
	runExampleCases(t, "bank-aggregates", []exampleCase{
		{"the analyst runs the statistics", "", use(nil), true, "obligation: input rule of pad bank-aggregates: drop columns account, iban"},
		{"outputs are deleted after 90 days", "", use(nil), true, "obligation: delete outputs after 2160h0m0s"},
		{"another purpose", "", use(func(r *Request) { r.Purpose = "marketing" }), false, "deny pad bank-aggregates rules"},
		{"another program", "", use(func(r *Request) { r.Program = strings.Repeat("e", 64) }), false, "deny pad bank-aggregates rules"},
		{"someone else", "", use(func(r *Request) { r.Principal = stranger }), false, "deny pad bank-aggregates rules"},
		{"too few rows per aggregate", "", use(func(r *Request) { r.Output.Aggregation = 49 }), false, "output.min_aggregation"},
		{"too large", "", use(func(r *Request) { r.Output.Bytes = 65537 }), false, "output.max_bytes"},
		{"not an aggregate", "", use(func(r *Request) { r.Output.Kind = KindTable }), false, "output.kinds"},
		{"twenty jobs at most", "", use(func(r *Request) { r.Uses = Uses{{Pad: "bank-aggregates", Action: ActionUse}: 20} }), false, "lifecycle.max_uses.use"},
		{"until the end of 2026", "", use(func(r *Request) { r.Now = time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC) }), false, "lifecycle.expires"},
		{"a simulated TEE", "", use(func(r *Request) { r.TEE = TEEClaims{Type: "sim", Simulated: true, TCB: 2} }), false, "tee.allow_simulated"},
		{"an old TCB", "", use(func(r *Request) { r.TEE.TCB = 1 }), false, "tee.min_tcb"},
		{"the analyst receives the aggregate", KindAggregate, release(analyst, analyst), true, "permit pad bank-aggregates release-to-analyst"},
		{"with a copy to the bank", KindAggregate, release(analyst, analyst), true, "obligation: also release to " + bank.String()},
		{"the bank's copy may be named", KindAggregate, release(analyst, analyst, bank), true, "permit pad bank-aggregates release-to-analyst"},
		{"to the analyst only: no extra recipient", KindAggregate, release(analyst, analyst, stranger), false, "deny pad bank-aggregates derive.aggregate.rules"},
		{"not to someone else instead", KindAggregate, release(analyst, stranger), false, "deny pad bank-aggregates derive.aggregate.rules"},
		{"nobody else may release", KindAggregate, release(stranger, stranger), false, "deny pad bank-aggregates derive.aggregate.rules"},
	})
}

// TestLabTimeboxedExample: worked example 4 of docs/policy.md.
func TestLabTimeboxedExample(t *testing.T) {
	partner := mustID(t, "styxid1uu6tfh67vgii4wmjuirsyhp5fmjsplzxl5xaxo5wjfxrgisujqgq3u6y6y")
	count := "5542f9e3dfeca807796e67c2f42fe75c207dccb044d15799b9a42f0f25cb8360"
	aug := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	tdx := TEEClaims{Type: "tdx"}
	use := func(mod func(*Request)) Request {
		r := Request{Principal: partner, Action: ActionUse, Now: aug, Program: count, TEE: tdx, Output: &OutputClaim{Kind: KindAggregate, Bytes: 16}}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	release := func(uses uint64) Request {
		return Request{Principal: partner, Action: ActionRelease, Now: aug, TEE: tdx, Output: &OutputClaim{Kind: KindAggregate, Bytes: 16, Recipients: []party.ID{partner}},
			Uses: Uses{{Pad: "derived", Action: ActionRelease}: uses}}
	}
	runExampleCases(t, "lab-timeboxed", []exampleCase{
		{"the partner counts rows in Q3", "", use(nil), true, "permit pad lab-timeboxed count"},
		{"not before July", "", use(func(r *Request) { r.Now = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC) }), false, "lifecycle.not_before"},
		{"not from October", "", use(func(r *Request) { r.Now = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC) }), false, "lifecycle.expires"},
		{"another program", "", use(func(r *Request) { r.Program = strings.Repeat("e", 64) }), false, "deny pad lab-timeboxed rules"},
		{"another party", "", use(func(r *Request) { r.Principal = testID("stranger") }), false, "deny pad lab-timeboxed rules"},
		{"a table instead of a count", "", use(func(r *Request) { r.Output.Kind = KindTable }), false, "output.kinds"},
		{"a result that is not tiny", "", use(func(r *Request) { r.Output.Bytes = 1025 }), false, "output.max_bytes"},
		{"TDX only", "", use(func(r *Request) { r.TEE = TEEClaims{Type: "snp"} }), false, "tee.types"},
		{"the result is released once", KindAggregate, release(0), true, "permit pad lab-timeboxed release-once"},
		{"and only once", KindAggregate, release(1), false, "deny pad lab-timeboxed rules"},
	})
}

// TestDevSimulatedExample: worked example 5 of docs/policy.md.
func TestDevSimulatedExample(t *testing.T) {
	dev := mustID(t, "styxid1ulbnyhhrb3gbxg4e3aqfblqhc7oga6t46esiqxnuuw3qt6itotkdokncbi")
	prog := "5542f9e3dfeca807796e67c2f42fe75c207dccb044d15799b9a42f0f25cb8360"
	now := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	simDebug := TEEClaims{Type: "sim", Simulated: true, Debug: true}
	use := func(mod func(*Request)) Request {
		r := Request{Principal: dev, Action: ActionUse, Now: now, Program: prog, TEE: simDebug}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	runExampleCases(t, "dev-simulated", []exampleCase{
		{"the developer on a simulated debug TEE", "", use(nil), true, "permit pad dev-simulated me"},
		{"deleted after a week", "", use(nil), true, "obligation: delete outputs after 168h0m0s"},
		{"the other known program", "", use(func(r *Request) { r.Program = "df2862bd23a398529cac131e40c7e5293f6b4dade83c24e3f4326454968effcc" }), true, "permit pad dev-simulated me"},
		{"an unknown program", "", use(func(r *Request) { r.Program = strings.Repeat("e", 64) }), false, "deny pad dev-simulated rules"},
		{"only the developer", "", use(func(r *Request) { r.Principal = testID("stranger") }), false, "deny pad dev-simulated rules"},
		{"not on SGX", "", use(func(r *Request) { r.TEE = TEEClaims{Type: "sgx"} }), false, "tee.types"},
		{"gone in 2027", "", use(func(r *Request) { r.Now = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }), false, "lifecycle.expires"},
		{"the developer releases a derived table", KindTable, Request{Principal: dev, Action: ActionRelease, Now: now, TEE: simDebug,
			Output: &OutputClaim{Kind: KindTable, Recipients: []party.ID{dev}}}, true, "permit pad dev-simulated me"},
	})
}

// TestHospitalCPredictions: hospital C's predictions of its models may be released to the clinic
// (worked example 1), while nothing else derived from a model is.
func TestHospitalCPredictions(t *testing.T) {
	c := loadExample(t, "hospital-c")
	clinic := c.Members("clinics")[0]
	now := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	decide := func(k Kind) Decision {
		ch := &Chain{Pad: PadRef{ID: "out", Kind: k, Depth: 2}, Sources: []Source{{Pad: PadRef{ID: "c"}, Policy: c, Distance: 2,
			FirstKinds: []Kind{KindModel}, LaterKinds: []Kind{k}}}}
		return NewEngine().Decide(ch, &Request{Principal: clinic, Action: ActionRelease, Now: now, TEE: TEEClaims{Type: "tdx"},
			Output: &OutputClaim{Kind: k, Recipients: []party.ID{clinic}}})
	}
	if d := decide(KindPrediction); !d.Allow || !strings.Contains(d.Explain(), "obligation: also release to "+c.Owner().String()) {
		t.Errorf("a prediction of C's model was not released to the clinic with a copy to C:\n%s", d.Explain())
	}
	if d := decide(KindTable); d.Allow || !strings.Contains(d.Explain(), "forbid pad c weights-never-leave") {
		t.Errorf("a table derived from C's model was released:\n%s", d.Explain())
	}
}
