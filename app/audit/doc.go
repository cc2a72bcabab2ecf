// Package audit proves the books from the event log alone. It is one of the
// finance tools (with the ledger export here and app/replay): a use case
// over the global log that reads it only through the store port
// (eventstore.Store's Head and ReadAll, so any adapter will do), decodes
// each event with domain.DecodeEvent and keeps its sums exactly: the value
// and exponent domain.Money's addition gives (in integers while they fit).
//
// An Auditor is fed every event in log order (Apply, or Run, which decodes
// and hashes on several goroutines and folds in order), each check is a
// pure function of the events seen so far, and Finish closes the checks
// that need the whole history. Nothing here trusts the read models or the
// domain's own state: the billing rules below are implemented a second
// time, on purpose, and recomputed from the facts; the domain's billing
// code is never called.
//
// # Checks
//
//  0. decode: every event of an account, backup or clock stream decodes
//     into a known domain event (an undecodable fact cannot be audited),
//     and ledger transactions are only on account streams.
//  1. balanced: the postings of every LedgerPosted sum to zero.
//  2. non-negative: no customer ledger account (customer:<id>) is ever below
//     zero after a transaction, in log order. One violation is reported when
//     a balance goes negative, not one per transaction while it stays there.
//  3. billing: every charge is for one billable hour of its server, at the
//     server's hourly price, and no hour is charged twice; every billable
//     hour that is due is charged (see below).
//  4. refunds: every deploy that failed (ServerFailed, status ERROR) was
//     refunded exactly what it was charged, so its net charge is zero at the
//     end of the log; a refund for a server that had not failed is a
//     violation too.
//  5. hash chain: on each account stream, every LedgerPosted's PrevHash is
//     the Hash of the stream's previous LedgerPosted ("" for the first), and
//     its Hash equals ComputeHash. The chain continues from the stored Hash,
//     so one edited event is one violation and a dropped one breaks exactly
//     one link.
//  6. read model: the balance every read model shows equals the fold of the
//     ledger (CheckReadModel, against any projections.Reader).
//  7. top-ups: every top-up credit paid through an invoice credits that
//     top-up once, by the invoice's transaction, for the settled amount
//     unless an operator credited it by hand; no invoice is credited twice
//     (domain.TopupCredits).
//
// # Billable hours
//
// A server's billing hours are the slots [C + k·1h, C + (k+1)·1h), k ≥ 0,
// where C is ServerDeployed.At (hours count from creation, not from the top
// of the clock). A slot is billable when its start lies in one of the
// server's billing periods, which the lifecycle events open and close:
//
//   - ServerDeployed opens a period at slot 0 (the first hour is charged
//     with the deploy).
//   - ServerSuspended{At: S} closes the open period before S: slots starting
//     strictly before S are billable, the slot starting at S is not (the
//     biller suspends a server at the start of the hour it cannot pay for).
//   - ServerResumed{At: t} opens a period at the slot containing t (slot 0
//     if t is not after C): the hour the server resumes in is charged whole.
//   - ServerDestroyRequested{At: t} and ServerFailed{At: t} close the open
//     period after t: slots starting at or before t are billable (hours that
//     began before the DELETE, or before the failure, are settled first),
//     later ones are not.
//   - Activation, provisioning steps and ServerDestroyed change nothing.
//
// A billable slot is required (its absence is a violation) when it lies in
// a closed period, because the domain settles every due hour in the same
// decision that suspends, destroys or fails a server; or, in a period still
// open at the end of the log, when it started at least Grace (default one
// hour) before the account's newest time. The log's newest time is the
// latest domain timestamp of any event on the shared sandbox clock (a
// ClockAdvanced counts as At + Seconds, the sandbox time it moved to; an
// account's event counts less the account's own clock offset at that
// point, AccountClockAdvanced); an account's newest time is that plus its
// own offset, so one account's own clock moves make only its own hours
// due. The recording time of the store is not used, since the sandbox
// clock runs ahead of it. Slots inside the grace window
// may be charged or not: the biller may simply not have run yet.
//
// A charge must carry the server, From = the start of one of its slots and
// To = From + 1h; it is not billable when no period contains its slot, and
// it is charged twice when an earlier charge has the same slot. Charges
// and refunds of a failed server still count as charged hours (they were
// billable when charged); check 4 then requires they were all given back.
//
// Missing hours are reported one violation per run of consecutive hours,
// naming the event that opened the period (the deploy or the resume).
package audit
