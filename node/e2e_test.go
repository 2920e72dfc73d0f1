package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

// hospitalPolicy is a consortium member's policy: use and derive for cancer research with the
// approved programs; models trained on the data may be queried by the clinic (at most three
// times) and never released; aggregates may be released to members.
const hospitalPolicy = `version: 1
owner: ${owner}
groups:
  consortium: [${h1}, ${h2}]
  clinics: [${clinic}]
rules: |
  @id("research")
  permit (principal in Styx::Group::"consortium", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { context.purpose == "cancer-research" && ["${train}", "${stats}", "${count}"].contains(context.program) };
${input}
output:
  kinds: [model, aggregate, log]
derive:
  model:
    rules: |
      @id("finetune")
      permit (principal in Styx::Group::"consortium", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
      when { context.program == "${train}" };
      @id("clinic-query")
      permit (principal in Styx::Group::"clinics", action == Styx::Action::"query", resource)
      when { context.program == "${predict}" };
      @id("no-weights")
      forbid (principal, action == Styx::Action::"release", resource);
    output:
      kinds: [model, prediction, log]
    lifecycle:
      max_uses_per_party: {query: 3}
  aggregate:
    rules: |
      @id("members-see-aggregates")
      permit (principal in Styx::Group::"consortium", action == Styx::Action::"release", resource);
  log:
    rules: |
      @id("members-see-logs")
      permit (principal in Styx::Group::"consortium", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

const dropRule = `input:
  - purposes: [cancer-research]
    drop: [texture_mean, texture_se, texture_worst]`

func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	n := startNode(t, t.TempDir())
	h1k, h2k, clinicK, malloryK := newKey(t), newKey(t), newKey(t), newKey(t)
	h1, h2, clinic, mallory := n.client(t, h1k), n.client(t, h2k), n.client(t, clinicK), n.client(t, malloryK)
	train := addProgram(t, h1, "examples/programs/svmtrain", false)
	stats := addProgram(t, h1, "examples/programs/colstats", false)
	count := addProgram(t, h1, "examples/programs/rowcount", false)
	predict := addProgram(t, h1, "examples/programs/svmpredict", true)
	vars := map[string]string{"h1": h1k.Identity().ID().String(), "h2": h2k.Identity().ID().String(),
		"clinic": clinicK.Identity().ID().String(), "train": train, "stats": stats, "count": count, "predict": predict}
	shares, test := wdbcShares(t, 2)
	cl := n.Cluster.Identity()

	vars["owner"], vars["input"] = vars["h1"], dropRule
	p1 := upload(t, h1, sealTo(t, h1k, cl, expand(hospitalPolicy, vars), "text/csv", shares[0]))
	vars["owner"], vars["input"] = vars["h2"], ""
	p2 := upload(t, h2, sealTo(t, h2k, cl, expand(hospitalPolicy, vars), "text/csv", shares[1]))

	t.Run("upload refuses a Pad not sealed to the cluster", func(t *testing.T) {
		var buf bytes.Buffer
		vars["owner"] = vars["h1"]
		if _, err := pad.Seal(&buf, strings.NewReader("x"), pad.SealOptions{Signer: h1k, Recipients: []*party.Identity{h1k.Identity()},
			Policy: []byte(expand(hospitalPolicy, vars)), PolicyType: "application/styx-policy+yaml", Size: 1}); err != nil {
			t.Fatal(err)
		}
		_, err := h1.UploadPad(ctx, bytes.NewReader(buf.Bytes()))
		if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "not sealed to this cluster") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("upload refuses a tampered Pad and stores nothing", func(t *testing.T) {
		sealed := sealTo(t, h1k, cl, expand(hospitalPolicy, vars), "text/csv", shares[0])
		sealed[len(sealed)-20] ^= 1
		if _, err := h1.UploadPad(ctx, bytes.NewReader(sealed)); !errors.Is(err, api.ErrBadRequest) {
			t.Fatalf("got %v", err)
		}
		list, err := h1.ListPads(ctx, &api.ListPadsRequest{})
		if err != nil || len(list.Pads) != 1 {
			t.Fatalf("h1 sees %d Pads (%v), want its one good Pad", len(list.Pads), err)
		}
	})

	t.Run("explain names the Pad and the rule of a denial", func(t *testing.T) {
		ex, err := h1.ExplainJob(ctx, &api.JobSpec{Program: train, Inputs: map[string]string{"a": p1.ID, "b": p2.ID},
			Purpose: "marketing", Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}}})
		if err != nil {
			t.Fatal(err)
		}
		if ex.Allowed {
			t.Fatal("marketing purpose allowed")
		}
		// Both Pads' only permit ("research") requires purpose cancer-research: no rule permits.
		const rule = "rules: no rule permits use"
		if !anyReason(ex, p1.ID, rule) || !anyReason(ex, p2.ID, rule) {
			t.Fatalf("reasons do not name both Pads and %q: %+v", rule, ex.Decisions)
		}
	})

	t.Run("input rules drop columns before the program sees them", func(t *testing.T) {
		st := waitJob(t, h1, &api.JobSpec{Program: stats, Inputs: map[string]string{"a": p1.ID}, Purpose: "cancer-research",
			Outputs: []api.OutputSpec{{Name: "stats", Kind: "aggregate"}}})
		mustDone(t, st)
		body := release(t, h1, h1k, st.Outputs["stats"])
		if strings.Contains(body, "texture_mean") || !strings.Contains(body, "radius_mean") {
			t.Fatalf("stats of a Pad whose owner drops texture columns: %s", body)
		}
		// h2 keeps its columns.
		st = waitJob(t, h2, &api.JobSpec{Program: stats, Inputs: map[string]string{"b": p2.ID}, Purpose: "cancer-research",
			Outputs: []api.OutputSpec{{Name: "stats", Kind: "aggregate"}}})
		mustDone(t, st)
		if body := release(t, h2, h2k, st.Outputs["stats"]); !strings.Contains(body, "texture_mean") {
			t.Fatalf("h2's stats lack texture_mean: %s", body)
		}
	})

	t.Run("denials carry their reasons", func(t *testing.T) {
		spec := &api.JobSpec{Program: count, Inputs: map[string]string{"a": p1.ID}, Purpose: "cancer-research",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}}
		_, err := mallory.SubmitJob(ctx, spec)
		mustDeny(t, "non-member", err, p1.ID, "rules: no rule permits use")
		spec.Outputs = []api.OutputSpec{{Name: "count", Kind: "table"}}
		if _, err := h1.SubmitJob(ctx, spec); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "table") {
			t.Fatalf("table output from a Pad allowing model and aggregate: %v", err)
		}
	})

	t.Run("a policy refusing simulated TEE evidence denies the job", func(t *testing.T) {
		vars["owner"], vars["input"] = vars["h1"], ""
		strict := strings.Replace(expand(hospitalPolicy, vars), "tee: {allow_simulated: true}\n", "", 1)
		if strict == expand(hospitalPolicy, vars) {
			t.Fatal("the policy template no longer accepts simulated evidence explicitly")
		}
		p3 := upload(t, h1, sealTo(t, h1k, cl, strict, "text/csv", shares[0]))
		spec := &api.JobSpec{Program: count, Inputs: map[string]string{"a": p3.ID}, Purpose: "cancer-research",
			Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}}
		_, err := h1.SubmitJob(ctx, spec)
		mustDeny(t, "job on a simulated node", err, p3.ID, "tee.allow_simulated")
		ex, err := h1.ExplainJob(ctx, spec)
		if err != nil || ex.Allowed || !anyReason(ex, p3.ID, "simulated") {
			t.Fatalf("explain: %+v (%v)", ex, err)
		}
	})

	var model string
	t.Run("joint training seals a model derived from both Pads", func(t *testing.T) {
		st := waitJob(t, h1, &api.JobSpec{Program: train, Inputs: map[string]string{"a": p1.ID, "b": p2.ID},
			Purpose: "cancer-research", Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}},
			Params: json.RawMessage(`{"epochs": 30, "seed": 1}`)})
		mustDone(t, st)
		model = st.Outputs["model"]
		info, err := h1.Pad(ctx, model)
		if err != nil {
			t.Fatal(err)
		}
		if !info.Derived || info.Kind != "model" || len(info.Parents) != 2 {
			t.Fatalf("model info: %+v", info)
		}
		_, err = h1.Release(ctx, model)
		if !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "no-weights") {
			t.Fatalf("releasing weights: %v", err)
		}
		// Its receipt verifies offline with the cluster key.
		raw, err := h1.Receipt(ctx, st.Receipt)
		if err != nil {
			t.Fatal(err)
		}
		r, err := audit.ParseReceipt(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Verify(n.Cluster.Identity().SigningKey()); err != nil {
			t.Fatalf("receipt: %v", err)
		}
		if !h1.Simulated() {
			t.Fatal("answers of a simulated node are not marked simulated")
		}
		if !r.Claims.TEE.Simulated || len(r.Claims.Inputs) != 2 || r.Claims.Outputs[0].Pad != model {
			t.Fatalf("receipt claims: %+v", r.Claims)
		}
		raw[len(raw)/2] ^= 1
		if r, err := audit.ParseReceipt(raw); err == nil {
			if _, _, err := r.Verify(n.Cluster.Identity().SigningKey()); err == nil {
				t.Fatal("tampered receipt verified")
			}
		}
	})

	t.Run("the clinic queries up to its limit; others are refused", func(t *testing.T) {
		var q bytes.Buffer
		sub, _ := test.Project(test.Features)
		sub.WriteCSV(&q, ml.LabelColumn)
		for i := range 3 {
			ans, err := clinic.Query(ctx, model, predict, q.Bytes())
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
			if !strings.Contains(string(ans), "predictions") {
				t.Fatalf("answer: %.200s", ans)
			}
		}
		if _, err := clinic.Query(ctx, model, predict, q.Bytes()); !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "max_uses_per_party") {
			t.Fatalf("fourth query: %v", err)
		}
		if _, err := mallory.Query(ctx, model, predict, q.Bytes()); !errors.Is(err, api.ErrDenied) {
			t.Fatalf("non-member query: %v", err)
		}
		if _, err := clinic.Query(ctx, model, train, q.Bytes()); !errors.Is(err, api.ErrDenied) {
			t.Fatalf("query through an unapproved program: %v", err)
		}
	})

	var model2 string
	t.Run("fine-tuning makes a second-generation model", func(t *testing.T) {
		st := waitJob(t, h2, &api.JobSpec{Program: train, Inputs: map[string]string{"model": model, "b": p2.ID},
			Purpose: "cancer-research", Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}, {Name: "log", Kind: "log"}},
			Params: json.RawMessage(`{"epochs": 5, "seed": 2}`)})
		if st.State != api.JobDone && st.Outputs["log"] != "" {
			t.Logf("log: %s", release(t, h2, h2k, st.Outputs["log"]))
		}
		mustDone(t, st)
		model2 = st.Outputs["model"]
		lin, err := h1.Lineage(ctx, model2)
		if err != nil {
			t.Fatal(err)
		}
		if len(lin.Nodes) != 4 {
			t.Fatalf("lineage of model v2 has %d nodes, want 4 (two Pads, two models)", len(lin.Nodes))
		}
	})

	t.Run("policy rollback is refused", func(t *testing.T) {
		vars["owner"], vars["input"] = vars["h2"], ""
		if _, err := h2.UpdatePolicy(ctx, p2.ID, []byte(expand(hospitalPolicy, vars))); !errors.Is(err, api.ErrConflict) {
			t.Fatalf("same version again: %v", err)
		}
		if _, err := h1.UpdatePolicy(ctx, p2.ID, []byte(strings.Replace(expand(hospitalPolicy, vars), "version: 1", "version: 2", 1))); !errors.Is(err, api.ErrDenied) {
			t.Fatalf("update by a non-owner: %v", err)
		}
	})

	t.Run("revocation reaches every descendant and shreds their keys", func(t *testing.T) {
		res, err := h1.Revoke(ctx, p1.ID, "leaving the consortium")
		if err != nil {
			t.Fatal(err)
		}
		if !contains(res.Shredded, model) || !contains(res.Shredded, model2) {
			t.Fatalf("shredded %v, want both models", res.Shredded)
		}
		var q bytes.Buffer
		test.WriteCSV(&q, ml.LabelColumn)
		_, err = clinic.Query(ctx, model2, predict, q.Bytes())
		if !errors.Is(err, api.ErrDenied) || !strings.Contains(err.Error(), "revoked") || !strings.Contains(err.Error(), p1.ID) {
			t.Fatalf("query on a model of a revoked Pad: %v", err)
		}
		info, _ := h2.Pad(ctx, model2)
		if info.State != api.PadRevoked {
			t.Fatalf("model v2 state %s", info.State)
		}
	})

	t.Run("owners see only events about their Pads", func(t *testing.T) {
		page, err := h2.Audit(ctx, &api.AuditQuery{})
		if err != nil || len(page.Entries) == 0 {
			t.Fatalf("h2 audit: %d entries, %v", len(page.Entries), err)
		}
		page, err = mallory.Audit(ctx, &api.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			ev, _ := audit.ParseRecord(e.Record)
			if ev.Actor != malloryK.Identity().ID().String() && (ev.Touches(p1.ID) || ev.Touches(p2.ID)) {
				t.Fatalf("mallory sees an event about the hospitals' Pads: %s", e.Record)
			}
		}
	})
}

func release(t *testing.T, c *api.Client, key *party.Key, id string) string {
	t.Helper()
	rc, err := c.Release(context.Background(), id)
	if err != nil {
		t.Fatalf("release %s: %v", id, err)
	}
	defer rc.Close()
	_, pt, err := pad.Open(rc, key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(pt)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func anyReason(ex *api.Explanation, pad, substr string) bool {
	for _, d := range ex.Decisions {
		if d.Pad == pad && !d.Allowed {
			for _, r := range d.Reasons {
				if strings.Contains(r, substr) {
					return true
				}
			}
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
