package api

import (
	"context"
	"net/http"
)

func (s *Server) health(c *call) (any, error) {
	return map[string]string{"status": "ok", "audience": s.cfg.Audience}, nil
}

func (s *Server) attestation(c *call) (any, error) {
	if s.cfg.Attestation == nil {
		return nil, Errorf(ErrNotFound, "this node serves no attestation")
	}
	s.cfg.Attestation.ServeHTTP(c.w, c.r)
	return written{}, nil
}

func (s *Server) uploadPad(c *call) (any, error) {
	if _, err := c.query(); err != nil {
		return nil, err
	}
	info, err := s.cfg.Service.UploadPad(c.ctx, c.caller, c.body, c.r.ContentLength)
	if err == nil {
		if err = c.body.finish(); err == nil {
			c.status = http.StatusCreated
		}
	}
	return info, err
}

func (s *Server) addProgram(c *call) (any, error) {
	if _, err := c.query(); err != nil {
		return nil, err
	}
	info, err := s.cfg.Service.AddProgram(c.ctx, c.caller, c.body, c.r.ContentLength)
	if err == nil {
		if err = c.body.finish(); err == nil {
			c.status = http.StatusCreated
		}
	}
	return info, err
}

func (s *Server) listPads(c *call) (any, error) {
	q, err := c.query("owner", "after", "limit")
	if err != nil {
		return nil, err
	}
	req := &ListPadsRequest{Owner: q.Get("owner"), After: q.Get("after")}
	if req.After != "" {
		if err := ValidatePadID(req.After); err != nil {
			return nil, err
		}
	}
	if len(req.Owner) > MaxPadIDLen || (req.Owner != "" && !printableASCII(req.Owner)) {
		return nil, Errorf(ErrBadRequest, "owner: want a party id")
	}
	n, err := uintParam(q, "limit")
	if err != nil {
		return nil, err
	}
	req.Limit = int(min(n, 10000))
	return s.cfg.Service.ListPads(c.ctx, c.caller, req)
}

func (s *Server) getPad(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	return s.cfg.Service.Pad(c.ctx, c.caller, id)
}

func (s *Server) release(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	return s.cfg.Service.Release(c.ctx, c.caller, id)
}

func (s *Server) query(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	var q QueryRequest
	if err := decodeJSON(c.json, &q); err != nil {
		return nil, err
	}
	if err := q.validate(); err != nil {
		return nil, err
	}
	return s.cfg.Service.Query(c.ctx, c.caller, id, &q)
}

func (s *Server) updatePolicy(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	var u SignedPolicyUpdate
	if err := decodeJSON(c.json, &u); err != nil {
		return nil, err
	}
	if u.Pad != id {
		return nil, Errorf(ErrBadRequest, "policy update is for Pad %q, not %q", abbrev(u.Pad), id)
	}
	if _, err := u.Verify(); err != nil {
		return nil, err
	}
	return s.cfg.Service.UpdatePolicy(c.ctx, c.caller, &u)
}

func (s *Server) revoke(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	var rv Revocation
	if err := decodeJSON(c.json, &rv); err != nil {
		return nil, err
	}
	if rv.Pad != id {
		return nil, Errorf(ErrBadRequest, "revocation is for Pad %q, not %q", abbrev(rv.Pad), id)
	}
	if _, err := rv.Verify(); err != nil {
		return nil, err
	}
	return s.cfg.Service.Revoke(c.ctx, c.caller, &rv)
}

func (s *Server) lineage(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	return s.cfg.Service.Lineage(c.ctx, c.caller, id)
}

func (s *Server) jobSpec(c *call) (*JobSpec, error) {
	if _, err := c.query(); err != nil {
		return nil, err
	}
	var spec JobSpec
	if err := decodeJSON(c.json, &spec); err != nil {
		return nil, err
	}
	return &spec, spec.Validate()
}

func (s *Server) submitJob(c *call) (any, error) {
	spec, err := s.jobSpec(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.waitContext(c.ctx, spec.Wait)
	defer cancel()
	return s.cfg.Service.SubmitJob(ctx, c.caller, spec)
}

func (s *Server) explainJob(c *call) (any, error) {
	spec, err := s.jobSpec(c)
	if err != nil {
		return nil, err
	}
	return s.cfg.Service.ExplainJob(c.ctx, c.caller, spec)
}

func (s *Server) getJob(c *call) (any, error) {
	id, err := c.pathID()
	if err != nil {
		return nil, err
	}
	q, err := c.query("wait")
	if err != nil {
		return nil, err
	}
	wait, err := boolParam(q, "wait")
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.waitContext(c.ctx, wait)
	defer cancel()
	return s.cfg.Service.Job(ctx, c.caller, id, wait)
}

// waitContext bounds how long a wait=true request may hold its connection.
func (s *Server) waitContext(ctx context.Context, wait bool) (context.Context, context.CancelFunc) {
	if !wait {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.MaxWait)
}

func (s *Server) audit(c *call) (any, error) {
	q, err := c.query("pad", "from", "limit")
	if err != nil {
		return nil, err
	}
	aq := &AuditQuery{Pad: q.Get("pad")}
	if aq.Pad != "" {
		if err := ValidatePadID(aq.Pad); err != nil {
			return nil, err
		}
	}
	if aq.From, err = uintParam(q, "from"); err != nil {
		return nil, err
	}
	n, err := uintParam(q, "limit")
	if err != nil {
		return nil, err
	}
	aq.Limit = int(min(n, 10000))
	return s.cfg.Service.Audit(c.ctx, c.caller, aq)
}

func (s *Server) auditHead(c *call) (any, error) {
	q, err := c.query("old")
	if err != nil {
		return nil, err
	}
	old, err := uintParam(q, "old")
	if err != nil {
		return nil, err
	}
	return s.cfg.Service.AuditHead(c.ctx, c.caller, old)
}

func (s *Server) receipt(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	b, err := s.cfg.Service.Receipt(c.ctx, c.caller, id)
	if err == nil && len(b) > MaxReceiptSize {
		return nil, Errorf(ErrInternal, "receipt over the size limit")
	}
	return b, err
}

// idNoQuery returns the validated {id} of a route that takes no query parameters.
func (c *call) idNoQuery() (string, error) {
	if _, err := c.query(); err != nil {
		return "", err
	}
	return c.pathID()
}
