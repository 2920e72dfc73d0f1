package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// A Code names the category of an API error. Codes are stable: clients switch on them.
type Code string

// The error codes and, in the comment, the HTTP status each maps to.
const (
	CodeBadRequest       Code = "bad_request"        // 400: the request does not parse or is invalid
	CodeUnauthenticated  Code = "unauthenticated"    // 401: missing, bad, stale or replayed signature
	CodeDenied           Code = "denied"             // 403: a policy said no; Reasons say why
	CodeNotFound         Code = "not_found"          // 404
	CodeMethodNotAllowed Code = "method_not_allowed" // 405
	CodeConflict         Code = "conflict"           // 409: e.g. an older policy version, already revoked
	CodeTooLarge         Code = "too_large"          // 413: body over the route's limit
	CodeUnavailable      Code = "unavailable"        // 503: overloaded or shutting down; retry later
	CodeInternal         Code = "internal"           // 500: a bug or a failure the caller cannot fix
)

// An Error is the detail of a failed request: what the JSON error body holds.
type Error struct {
	Code    Code     `json:"code"`
	Message string   `json:"message"`
	Reasons []string `json:"reasons,omitempty"`
	// Status is the HTTP status the error arrived with (client side); not sent.
	Status int `json:"-"`
}

// Sentinels, one per code. errors.Is(err, ErrDenied) holds for any *Error with CodeDenied,
// and for any error that wraps ErrDenied.
var (
	ErrBadRequest       = &Error{Code: CodeBadRequest, Message: "bad request"}
	ErrUnauthenticated  = &Error{Code: CodeUnauthenticated, Message: "unauthenticated"}
	ErrDenied           = &Error{Code: CodeDenied, Message: "denied"}
	ErrNotFound         = &Error{Code: CodeNotFound, Message: "not found"}
	ErrMethodNotAllowed = &Error{Code: CodeMethodNotAllowed, Message: "method not allowed"}
	ErrConflict         = &Error{Code: CodeConflict, Message: "conflict"}
	ErrTooLarge         = &Error{Code: CodeTooLarge, Message: "request body too large"}
	ErrUnavailable      = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrInternal         = &Error{Code: CodeInternal, Message: "internal error"}
)

var sentinels = []*Error{
	ErrBadRequest, ErrUnauthenticated, ErrDenied, ErrNotFound, ErrMethodNotAllowed,
	ErrConflict, ErrTooLarge, ErrUnavailable, ErrInternal,
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if b.Len() == 0 {
		b.WriteString(string(e.Code))
	}
	if len(e.Reasons) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Reasons, "; "))
	}
	return b.String()
}

// Is reports whether target is the sentinel for e's code (ErrDenied, …). Other *Error
// values, such as ErrBodyHash, match only themselves.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && isSentinel(t) && t.Code == e.Code
}

// HTTPStatus returns the HTTP status for the error's code.
func (e *Error) HTTPStatus() int { return statusOf(e.Code) }

func statusOf(c Code) int {
	switch c {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeDenied:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// codeOfStatus guesses a code for a response that carries no JSON error body (a proxy's page).
func codeOfStatus(status int) Code {
	for _, s := range sentinels {
		if statusOf(s.Code) == status {
			return s.Code
		}
	}
	if status >= 500 {
		return CodeUnavailable
	}
	return CodeBadRequest
}

// Errorf returns an *Error with the code of sentinel and a formatted message.
func Errorf(sentinel *Error, format string, args ...any) *Error {
	return &Error{Code: sentinel.Code, Message: fmt.Sprintf(format, args...)}
}

// Denied returns a CodeDenied error with the decision's reasons.
func Denied(message string, reasons ...string) *Error {
	return &Error{Code: CodeDenied, Message: message, Reasons: reasons}
}

// reasoner is implemented by errors that carry a decision's reasons (such as a policy denial).
type reasoner interface{ Reasons() []string }

// Limits on what an error body may hold, both when sending and when reading one.
const (
	maxErrorBody    = 64 << 10
	maxErrorReasons = 64
	maxErrorText    = 2048
)

// toError turns whatever a Service returned into the *Error sent on the wire, and says
// whether the detail is safe to send. Errors that wrap no sentinel are internal: their text
// is logged, not sent, because it may describe the node's internals.
func toError(err error) (out *Error, internal bool) {
	var e *Error
	if !errors.As(err, &e) {
		return &Error{Code: CodeInternal, Message: ErrInternal.Message}, true
	}
	out = &Error{Code: e.Code, Message: e.Message, Reasons: e.Reasons}
	if isSentinel(e) {
		// fmt.Errorf("…: %w", ErrDenied): the wrapping text is the message.
		out.Message = err.Error()
		out.Reasons = nil
	}
	var r reasoner
	if len(out.Reasons) == 0 && errors.As(err, &r) {
		out.Reasons = r.Reasons()
	}
	if out.Code == CodeInternal {
		return &Error{Code: CodeInternal, Message: ErrInternal.Message}, true
	}
	return clampError(out), false
}

func isSentinel(e *Error) bool {
	for _, s := range sentinels {
		if e == s {
			return true
		}
	}
	return false
}

// clampError caps the sizes of an error, so neither side sends or keeps an unbounded body.
func clampError(e *Error) *Error {
	e.Message = clampText(e.Message)
	if len(e.Reasons) > maxErrorReasons {
		e.Reasons = e.Reasons[:maxErrorReasons]
	}
	for i, r := range e.Reasons {
		e.Reasons[i] = clampText(r)
	}
	return e
}

func clampText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "") + "…"
	}
	return s
}

// decodeError reads an error response body into an *Error; a body that is not ours becomes
// an error for the status code.
func decodeError(status int, body []byte) *Error {
	var e Error
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
		msg := strings.TrimSpace(string(body))
		if msg == "" {
			msg = http.StatusText(status)
		}
		e = Error{Code: codeOfStatus(status), Message: fmt.Sprintf("http %d: %s", status, msg)}
	}
	e.Status = status
	return clampError(&e)
}
