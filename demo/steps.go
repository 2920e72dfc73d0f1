package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
)

// outcome classifies an API result as allow or deny (with the reasons); other errors abort.
func outcome(err error) (string, []string, error) {
	if err == nil {
		return "allow", nil, nil
	}
	var ae *api.Error
	if errors.As(err, &ae) && errors.Is(err, api.ErrDenied) {
		return "deny", ae.Reasons, nil
	}
	return "", nil, err
}

// act runs f, times it and records the outcome against expect.
func (s *story) act(what, expect string, f func() (string, error)) error {
	return s.actWant(what, expect, "", f)
}

// actWant is act for an outcome whose reasons must also contain want.
func (s *story) actWant(what, expect, want string, f func() (string, error)) error {
	t0 := time.Now()
	detail, err := f()
	got, reasons, ferr := outcome(err)
	if ferr != nil {
		return fmt.Errorf("%s: %w", what, ferr)
	}
	s.record(&Event{What: what, Expect: expect, Got: got, Detail: detail, Reasons: reasons, Want: want, Millis: ms(time.Since(t0))})
	return nil
}

// seal: step 1.
func (s *story) seal(ctx context.Context) error {
	s.begin("Three hospitals seal their shares, each under its own policy")
	s.pads, s.policies = map[string]string{}, map[string][]byte{}
	for _, h := range []string{"hospital-a", "hospital-b", "hospital-c"} {
		if err := s.sealShare(ctx, h, 1, "hospital-a", "hospital-b", "hospital-c"); err != nil {
			return err
		}
	}
	if err := s.qualityAudit(ctx); err != nil {
		return err
	}
	s.end()
	return nil
}

func (s *story) sealShare(ctx context.Context, h string, version int, members ...string) error {
	doc, err := s.policyFor(h, version, members...)
	if err != nil {
		return err
	}
	if _, err := policy.Lint(doc); err != nil {
		return fmt.Errorf("%s policy: %w", h, err)
	}
	data := csvOf(s.data.parts[h])
	a := s.parties[h]
	var sealed bytes.Buffer
	hdr, err := pad.Seal(&sealed, bytes.NewReader(data), pad.SealOptions{
		Signer: a.key, Recipients: []*party.Identity{a.key.Identity(), a.cluster}, PQ: true,
		Policy: doc, PolicyType: "application/styx-policy+yaml", ContentType: "text/csv", Size: int64(len(data)),
	})
	if err != nil {
		return err
	}
	return s.act(fmt.Sprintf("%s seals %d rows and uploads them", h, s.data.parts[h].Rows()), "allow", func() (string, error) {
		info, err := a.client.UploadPad(ctx, bytes.NewReader(sealed.Bytes()))
		if err != nil {
			return "", err
		}
		s.pads[h], s.policies[h] = info.ID, doc
		return fmt.Sprintf("%s (policy v%d %s…, expires %s)", hdr.ID, version, info.PolicySHA256[:12], info.Expires.Format("2006-01-02")), nil
	})
}

// qualityAudit shows that the policies approve different programs and purposes: A and C let
// the consortium compute column statistics for a quality audit; B pins the training program.
func (s *story) qualityAudit(ctx context.Context) error {
	c := s.parties["hospital-c"]
	spec := &api.JobSpec{Program: s.statsSHA, Purpose: "quality-audit",
		Inputs:  map[string]string{"a": s.pads["hospital-a"], "c": s.pads["hospital-c"]},
		Outputs: []api.OutputSpec{{Name: "stats", Kind: "aggregate"}}}
	if err := s.act("hospital-c audits data quality with colstats over A's and C's shares (both approve it)", "allow", func() (string, error) {
		st, err := s.runJob(ctx, c, spec, "colstats job")
		if err != nil {
			return "", err
		}
		plain, err := s.release(ctx, c, st.Outputs["stats"])
		if err != nil {
			return "", err
		}
		var cols []struct{ Count float64 }
		if err := json.Unmarshal(plain, &cols); err != nil || len(cols) == 0 {
			return "", fmt.Errorf("colstats output: %v", err)
		}
		return fmt.Sprintf("statistics of %d columns over %.0f rows released to hospital-c", len(cols), cols[0].Count), nil
	}); err != nil {
		return err
	}
	return s.actWant("the same audit over B's share too (B approves only svmtrain, for cancer research)", "deny", s.pads["hospital-b"], func() (string, error) {
		bad := *spec
		bad.Inputs = map[string]string{"a": s.pads["hospital-a"], "b": s.pads["hospital-b"], "c": s.pads["hospital-c"]}
		_, err := c.client.SubmitJob(ctx, &bad)
		return "", err
	})
}

// train: step 2.
func (s *story) train(ctx context.Context) error {
	s.begin("Joint training of a linear SVM by an approved WASM program, inside the TEE")
	a := s.parties["hospital-a"]
	spec := &api.JobSpec{Program: s.trainSHA, Purpose: "cancer-research",
		Inputs:  map[string]string{"a": s.pads["hospital-a"], "b": s.pads["hospital-b"], "c": s.pads["hospital-c"]},
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}, {Name: "log", Kind: "log"}},
		Params:  json.RawMessage(fmt.Sprintf(`{"epochs": %d, "seed": 1, "curve": true}`, s.opts.Epochs))}
	if err := s.explain(ctx, a, spec); err != nil {
		return err
	}
	if err := s.act("a marketing job on the same data", "deny", func() (string, error) {
		bad := *spec
		bad.Purpose = "marketing"
		_, err := a.client.SubmitJob(ctx, &bad)
		return "", err
	}); err != nil {
		return err
	}
	var logID string
	if err := s.act("hospital-a trains on the three shares (model v1)", "allow", func() (string, error) {
		st, err := s.runJob(ctx, a, spec, "training job")
		if err != nil {
			return "", err
		}
		s.modelV1, logID = st.Outputs["model"], st.Outputs["log"]
		return fmt.Sprintf("model Pad %s derived from 3 Pads; receipt %s", s.modelV1, st.Receipt), nil
	}); err != nil {
		return err
	}
	if err := s.trainingLog(ctx, logID); err != nil {
		return err
	}
	if err := s.act("hospital-a asks for the weights of model v1", "deny", func() (string, error) {
		_, err := s.release(ctx, a, s.modelV1)
		return "", err
	}); err != nil {
		return err
	}
	if err := s.evaluate(ctx, "hospital-a", s.modelV1, &s.rep.Accuracy.Joint); err != nil {
		return err
	}
	if err := s.compare(); err != nil {
		return err
	}
	s.end()
	return nil
}

// explain asks for the decisions the joint training would meet and prints each of them.
func (s *story) explain(ctx context.Context, a *actor, spec *api.JobSpec) error {
	t0 := time.Now()
	ex, err := a.client.ExplainJob(ctx, spec)
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	ev := &Event{What: "explain: would every hospital admit hospital-a's training job? (no key touched)", Expect: "allow", Got: "allow",
		Detail: fmt.Sprintf("%d decisions, one per input and action:", len(ex.Decisions))}
	owner := map[string]string{}
	for h, id := range s.pads {
		owner[id] = h
	}
	count := map[string]int{}
	var lines []string
	for _, d := range ex.Decisions {
		verdict := "allow"
		if !d.Allowed {
			verdict, ev.Got = "deny", "deny"
		}
		var why []string
		for _, r := range d.Reasons {
			why = append(why, strings.Replace(r, "pad "+d.Pad+" ", "", 1))
		}
		line := fmt.Sprintf("%s on input %s (%s's policy): %s — %s", d.Action, d.Input, owner[d.Pad], verdict, strings.Join(why, "; "))
		if count[line]++; count[line] == 1 {
			lines = append(lines, line)
		}
	}
	for _, l := range lines {
		if n := count[l]; n > 1 {
			l += fmt.Sprintf(" (×%d: one per output)", n)
		}
		ev.Decisions = append(ev.Decisions, l)
	}
	ev.Millis = ms(time.Since(t0))
	s.record(ev)
	return nil
}

// trainingLog releases the training job's log to hospital-a, which ran the job (the policies
// release a job's log to its submitter only), and reads the training curve from it.
func (s *story) trainingLog(ctx context.Context, logID string) error {
	if err := s.act("hospital-a reads its job's log: the training curve, aggregates per epoch", "allow", func() (string, error) {
		plain, err := s.release(ctx, s.parties["hospital-a"], logID)
		if err != nil {
			return "", err
		}
		if s.rep.Curve.Styx, err = parseCurve(plain); err != nil {
			return "", err
		}
		if len(s.rep.Curve.Styx) != s.opts.Epochs {
			return "", fmt.Errorf("the log has %d epochs of %d", len(s.rep.Curve.Styx), s.opts.Epochs)
		}
		first, last := s.rep.Curve.Styx[0], s.rep.Curve.Styx[len(s.rep.Curve.Styx)-1]
		return fmt.Sprintf("%d epochs: hinge objective %.4f → %.4f, training accuracy %.4f → %.4f",
			len(s.rep.Curve.Styx), first.Objective, last.Objective, first.Accuracy, last.Accuracy), nil
	}); err != nil {
		return err
	}
	return s.actWant("hospital-b asks for hospital-a's training log (logs go to the job's submitter only)", "deny", "no rule permits release", func() (string, error) {
		_, err := s.release(ctx, s.parties["hospital-b"], logID)
		return "", err
	})
}

// parseCurve reads the lines svmtrain logs with "curve": true.
func parseCurve(log []byte) ([]EpochFit, error) {
	var out []EpochFit
	for line := range strings.Lines(string(log)) {
		var p EpochFit
		if n, _ := fmt.Sscanf(line, "svmtrain: epoch %d objective %g train_accuracy %g", &p.Epoch, &p.Objective, &p.Accuracy); n != 3 {
			continue
		}
		if p.Epoch != len(out)+1 {
			return nil, fmt.Errorf("training log: epoch %d after %d", p.Epoch, len(out))
		}
		out = append(out, p)
	}
	return out, nil
}

// release has a party ask for a Pad's plaintext and opens what it receives; the Pad must be
// signed by the cluster the party attested.
func (s *story) release(ctx context.Context, a *actor, id string) ([]byte, error) {
	body, err := a.client.Release(ctx, id)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	hdr, plain, err := pad.Open(body, a.key)
	if err != nil {
		return nil, fmt.Errorf("open released Pad: %w", err)
	}
	if hdr.Signer.ID() != a.cluster.ID() {
		return nil, fmt.Errorf("released Pad is signed by %s, not by the attested cluster", hdr.Signer.ID())
	}
	return io.ReadAll(plain)
}

// runJob submits a job and waits for it, showing its state while it runs; a job that does not
// end done is an error that says why.
func (s *story) runJob(ctx context.Context, a *actor, spec *api.JobSpec, label string) (*api.JobStatus, error) {
	spec.Wait = false
	st, err := a.client.SubmitJob(ctx, spec)
	if err != nil {
		return nil, err
	}
	if !st.State.Final() {
		stop := s.watch(fmt.Sprintf("%s %s", label, st.ID), func() string {
			if cur, err := a.client.Job(ctx, st.ID); err == nil {
				return string(cur.State)
			}
			return ""
		})
		st, err = a.client.WaitJob(ctx, st.ID)
		stop()
		if err != nil {
			return nil, err
		}
	}
	s.jobs = append(s.jobs, st)
	if st.State != api.JobDone {
		if st.Error != nil {
			return st, st.Error
		}
		return st, fmt.Errorf("job %s ended %s", st.ID, st.State)
	}
	return st, nil
}

// join: step 3.
func (s *story) join(ctx context.Context) error {
	s.begin("A fourth hospital joins and fine-tunes the model with its own share (model v2)")
	if err := s.sealShare(ctx, "hospital-d", 1, "hospital-a", "hospital-b", "hospital-c", "hospital-d"); err != nil {
		return err
	}
	d := s.parties["hospital-d"]
	spec := &api.JobSpec{Program: s.trainSHA, Purpose: "cancer-research",
		Inputs:  map[string]string{"model": s.modelV1, "d": s.pads["hospital-d"]},
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}, {Name: "log", Kind: "log"}},
		Params:  json.RawMessage(`{"epochs": 5, "seed": 2, "curve": true}`)}
	if err := s.act("hospital-d fine-tunes before the consortium lets it in", "deny", func() (string, error) {
		_, err := d.client.SubmitJob(ctx, spec)
		return "", err
	}); err != nil {
		return err
	}
	for _, h := range []string{"hospital-a", "hospital-b", "hospital-c"} {
		doc, err := s.policyFor(h, 2, "hospital-a", "hospital-b", "hospital-c", "hospital-d")
		if err != nil {
			return err
		}
		if err := s.act(h+" signs policy v2 admitting hospital-d (reaches model v1 at once)", "allow", func() (string, error) {
			info, err := s.parties[h].client.UpdatePolicy(ctx, s.pads[h], doc)
			if err != nil {
				return "", err
			}
			s.policies[h] = doc
			return fmt.Sprintf("%s now at policy v%d", info.ID, info.PolicyVersion), nil
		}); err != nil {
			return err
		}
	}
	var logID string
	if err := s.act("hospital-d fine-tunes model v1 with its share (model v2)", "allow", func() (string, error) {
		st, err := s.runJob(ctx, d, spec, "fine-tuning job")
		if err != nil {
			return "", err
		}
		s.modelV2, logID = st.Outputs["model"], st.Outputs["log"]
		lin, err := d.client.Lineage(ctx, s.modelV2)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("model Pad %s; lineage has %d Pads (4 hospitals' shares, v1, v2)", s.modelV2, len(lin.Nodes)), nil
	}); err != nil {
		return err
	}
	if err := s.actWant("hospital-d asks for its fine-tuning log (its own policy releases no logs)", "deny", s.pads["hospital-d"], func() (string, error) {
		_, err := s.release(ctx, d, logID)
		return "", err
	}); err != nil {
		return err
	}
	if err := s.evaluate(ctx, "hospital-d", s.modelV2, &s.rep.Accuracy.FineTuned); err != nil {
		return err
	}
	s.end()
	return nil
}
