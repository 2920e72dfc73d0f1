// Package store keeps a Styx node's state: small records in key-value
// buckets (Pad metadata, use counters, revocations, policy versions, wrapped
// data keys), a work queue of jobs, an append-only audit stream, and blobs.
//
// Call [Open] first: it starts an embedded NATS JetStream server inside the
// process (no listening port unless asked, file storage under Config.Dir,
// encryption at rest keyed from Config.Key, an fsync on every write) and
// returns a [Store]. Use [Store.Get], [Store.Create] and [Store.Update] for
// compare-and-set records, [Store.Reserve] for use counters that never exceed
// a limit and never go backwards, [Store.AdvanceVersion] for version
// registers that refuse rollback, [Store.Jobs] for the work queue and
// [Store.Audit] for the audit stream. Blobs live behind the small [Blobs]
// interface; [OpenDisk] is the local-disk implementation.
//
// The store is outside the trust boundary. Encryption at rest protects
// against someone who takes the disk, not against a host that can write to
// it: callers must authenticate every value they read back (Pads carry MACs
// and signatures; wrapped keys are AEAD-sealed; the audit log is a Merkle
// tree). See docs/store.md.
package store
