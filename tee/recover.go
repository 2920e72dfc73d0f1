package tee

// Guard runs f and turns a panic into a *VerifyError wrapping ErrMalformed. Backends call the
// manufacturers' parsers through it: go-tdx-guest's quote parser, for one, panics on some
// malformed quotes (see tee/tdx/testdata/fuzz), and attacker-controlled bytes must never crash
// a node.
func Guard(t Type, what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Refuse(t, ErrMalformed, "%s: parser panicked: %v", what, r)
		}
	}()
	return f()
}
