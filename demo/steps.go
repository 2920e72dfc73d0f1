package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	t0 := time.Now()
	detail, err := f()
	got, reasons, ferr := outcome(err)
	if ferr != nil {
		return fmt.Errorf("%s: %w", what, ferr)
	}
	if len(reasons) > 3 {
		reasons = append(reasons[:3], fmt.Sprintf("… and %d more reasons", len(reasons)-3))
	}
	s.record(&Event{What: what, Expect: expect, Got: got, Detail: detail, Reasons: reasons, Millis: ms(time.Since(t0))})
	return nil
}

// seal: step 1.
func (s *story) seal(ctx context.Context) error {
	s.begin("Three hospitals seal their shares, each under its own policy")
	s.pads = map[string]string{}
	for _, h := range []string{"hospital-a", "hospital-b", "hospital-c"} {
		if err := s.sealShare(ctx, h, 1, "hospital-a", "hospital-b", "hospital-c"); err != nil {
			return err
		}
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
		Signer: a.key, Recipients: []*party.Identity{a.key.Identity(), s.node.Cluster.Identity()}, PQ: true,
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
		s.pads[h] = info.ID
		return fmt.Sprintf("%s (policy v%d %s…, expires %s)", hdr.ID, version, info.PolicySHA256[:12], info.Expires.Format("2006-01-02")), nil
	})
}

// train: step 2.
func (s *story) train(ctx context.Context) error {
	s.begin("Joint training of a linear SVM by an approved WASM program, inside the TEE")
	a := s.parties["hospital-a"]
	spec := &api.JobSpec{Program: s.trainSHA, Purpose: "cancer-research",
		Inputs:  map[string]string{"a": s.pads["hospital-a"], "b": s.pads["hospital-b"], "c": s.pads["hospital-c"]},
		Outputs: []api.OutputSpec{{Name: "model", Kind: "model"}, {Name: "log", Kind: "log"}},
		Params:  json.RawMessage(fmt.Sprintf(`{"epochs": %d, "seed": 1}`, s.opts.Epochs))}
	if err := s.act("explain: hospital-a asks whether the job would be admitted", "allow", func() (string, error) {
		ex, err := a.client.ExplainJob(ctx, spec)
		if err != nil {
			return "", err
		}
		if !ex.Allowed {
			return "", api.Denied("not admitted", explainReasons(ex)...)
		}
		return fmt.Sprintf("%d decisions, every input and ancestor allows (no key touched)", len(ex.Decisions)), nil
	}); err != nil {
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
	if err := s.act("hospital-a trains on the three shares (model v1)", "allow", func() (string, error) {
		st, err := s.runJob(ctx, a, spec)
		if err != nil {
			return "", err
		}
		s.modelV1 = st.Outputs["model"]
		return fmt.Sprintf("model Pad %s derived from 3 Pads; receipt %s", s.modelV1, st.Receipt), nil
	}); err != nil {
		return err
	}
	if err := s.act("hospital-a asks for the weights of model v1", "deny", func() (string, error) {
		rc, err := a.client.Release(ctx, s.modelV1)
		if err == nil {
			rc.Close()
		}
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

// runJob submits a job and waits for it; a job that does not end done is an error that says why.
func (s *story) runJob(ctx context.Context, a *actor, spec *api.JobSpec) (*api.JobStatus, error) {
	spec.Wait = true
	st, err := a.client.SubmitJob(ctx, spec)
	if err != nil {
		return nil, err
	}
	for !st.State.Final() {
		if st, err = a.client.WaitJob(ctx, st.ID); err != nil {
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

func explainReasons(ex *api.Explanation) []string {
	var out []string
	for _, d := range ex.Decisions {
		if !d.Allowed {
			out = append(out, d.Reasons...)
		}
	}
	return out
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
		Params:  json.RawMessage(`{"epochs": 5, "seed": 2}`)}
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
			return fmt.Sprintf("%s now at policy v%d", info.ID, info.PolicyVersion), nil
		}); err != nil {
			return err
		}
	}
	if err := s.act("hospital-d fine-tunes model v1 with its share (model v2)", "allow", func() (string, error) {
		st, err := s.runJob(ctx, d, spec)
		if err != nil {
			return "", err
		}
		s.modelV2 = st.Outputs["model"]
		lin, err := d.client.Lineage(ctx, s.modelV2)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("model Pad %s; lineage has %d Pads (4 hospitals' shares, v1, v2)", s.modelV2, len(lin.Nodes)), nil
	}); err != nil {
		return err
	}
	if err := s.evaluate(ctx, "hospital-d", s.modelV2, &s.rep.Accuracy.FineTuned); err != nil {
		return err
	}
	s.end()
	return nil
}
