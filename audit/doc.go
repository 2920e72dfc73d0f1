// Package audit is Styx's transparency log: an append-only, Merkle-tree log of every decision and
// use the middleware makes, with tree heads signed by the cluster key inside the TEE, inclusion and
// consistency proofs, and receipts that an owner verifies offline.
//
// Inside the TEE, start with Open (a log in a directory; Options carry the cluster Signer and,
// to encrypt records at rest, a Seal AEAD) and append Events with Log.Append or Log.AppendBatch;
// Log.IssueReceipt appends a job or release Event and returns its Receipt (Log.LogReceipt only its
// index: Log.Receipt issues the receipt later). Log.SignHead, Log.ProveInclusion,
// Log.ProveConsistency, Log.Receipt and Log.Query serve clients. Appends are durable (fsync) when
// they return, and Open repairs a torn tail left by a crash.
//
// On the client side nothing needs the log itself: VerifyHead checks a signed tree head with the
// cluster's Ed25519 public key, VerifyInclusion and VerifyConsistency check proofs, Receipt.Verify
// checks a whole receipt, and LoadLastHead, SaveLastHead and AdvanceHead keep the last head a client
// saw so that a rolled-back or forked log is refused.
//
// The tree is golang.org/x/mod/sumdb/tlog (RFC 6962 hashing); signed heads are
// golang.org/x/mod/sumdb/note signed notes in the C2SP checkpoint layout. docs/audit.md describes
// every format.
package audit
