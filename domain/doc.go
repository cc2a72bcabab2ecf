// Package domain is the pure core of CryptoVPS: the catalog, money, the
// double-entry ledger, and the deciders of the account (with the servers it
// owns), and backup aggregates. Nothing here does I/O or reads a clock: every
// decision is Decide(state, command, now) -> events, and every state is the
// fold of its events through Evolve.
//
// The account stream is the consistency boundary for money: the balance, the
// server limit and suspension when money runs out are invariants across an
// account's servers, so a server's lifecycle events live on its account's
// stream, decided by the server rules in server.go.
package domain
