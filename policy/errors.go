package policy

import (
	"errors"
	"fmt"
)

// Sentinel errors, one per category. Detailed errors unwrap to one of them.
var (
	// ErrInvalid reports a policy document that does not parse or validate.
	ErrInvalid = errors.New("invalid policy")
	// ErrDenied reports a request that a policy does not allow.
	ErrDenied = errors.New("denied by policy")
	// ErrInvalidRequest reports a request or chain that is malformed (evaluated as a deny).
	ErrInvalidRequest = errors.New("invalid policy request")
	// ErrInputRule reports input data that an input rule cannot be applied to.
	ErrInputRule = errors.New("input rule cannot be applied")
)

// A SyntaxError is an error in a policy document at a position. It unwraps to ErrInvalid.
type SyntaxError struct {
	Line, Column int    // 1-based; 0 when unknown (a YAML syntax error has a line but no column)
	Field        string // dotted path of the field, e.g. "lifecycle.expires"; may be empty
	Msg          string
}

func (e *SyntaxError) Error() string {
	pos := ""
	switch {
	case e.Line > 0 && e.Column > 0:
		pos = fmt.Sprintf("%d:%d: ", e.Line, e.Column)
	case e.Line > 0:
		pos = fmt.Sprintf("%d: ", e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("policy: %s%s: %s", pos, e.Field, e.Msg)
	}
	return fmt.Sprintf("policy: %s%s", pos, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return ErrInvalid }

// A DeniedError carries a deny Decision as an error. It unwraps to ErrDenied.
type DeniedError struct{ Decision Decision }

func (e *DeniedError) Error() string {
	if len(e.Decision.Reasons) == 0 {
		return "policy: denied: no rule permits the request"
	}
	for _, r := range e.Decision.Reasons {
		if r.Effect != EffectPermit {
			return "policy: denied: " + r.String()
		}
	}
	return "policy: denied: " + e.Decision.Reasons[0].String()
}

func (e *DeniedError) Unwrap() error { return ErrDenied }
