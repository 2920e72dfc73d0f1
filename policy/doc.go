// Package policy implements the Styx sticky policy: a YAML document that an owner attaches to a Pad,
// stating who may use the data, for what purpose, with which program, until when, how often, what may
// reach a program (input rules), what an output may contain (output rules), what everything derived
// from the data may do (derive rules) and which TEEs are acceptable.
//
// Call [Parse] first: it decodes a document strictly (unknown fields, duplicate keys and bad values are
// errors with line:column), compiles its Cedar rules once and returns an immutable [*Policy]. Then ask
// an [Engine] (the default is [NewEngine]) for a [Decision] on a [Request] over a [Chain]: the Pad the
// request is on and every policy-bearing ancestor, each with its current policy. The decision says
// allow or deny, why (Pad, rule, text), and which obligations the caller must carry out: counters to
// reserve, recipients to add, output limits, input rules to apply (with [FilterCSV]), the earliest
// expiry and the TEE requirements.
//
// The package is pure: it does no I/O beyond parsing the bytes it is given. The language is specified
// in docs/policy.md.
package policy
