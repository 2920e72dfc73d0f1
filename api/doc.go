// Package api is the HTTP boundary of a Styx node: the wire types, the server that puts a
// [Service] (the engine) on the network, and [Client], the Go SDK the CLI uses.
//
// Start with [NewClient] on the client side and [NewServer] on the node. Every request except
// the attestation and health endpoints is signed by the caller's party key (see [SignRequest]
// and docs/api.md for the canonical string); the server verifies the signature, the clock skew,
// the nonce and the body hash before a [Service] method sees anything, and hands that method the
// caller's verified *party.Identity.
//
// Errors cross the wire as a stable JSON body {code, message, reasons}. A [Service] reports a
// category by returning an error that wraps one of the sentinels ([ErrDenied], [ErrNotFound],
// …) or an [*Error]; the client turns the body back into an [*Error] that matches the same
// sentinel under errors.Is.
package api
