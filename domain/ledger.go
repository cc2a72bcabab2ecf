package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// TxKind says what a ledger transaction is for.
type TxKind string

// Ledger transaction kinds.
const (
	TxSignupCredit TxKind = "signup_credit"
	TxTopup        TxKind = "topup"
	TxCharge       TxKind = "charge"
	TxRefund       TxKind = "refund"
)

// Ledger account names other than customers'.
const (
	LedgerPromoSignup    = "promo:signup"
	LedgerCryptoDeposits = "crypto:deposits"
	LedgerRevenueCompute = "revenue:compute"
)

// CustomerLedger is the ledger account holding a customer's balance.
func CustomerLedger(accountID string) string { return "customer:" + accountID }

// Posting moves Amount into (positive) or out of (negative) a ledger account.
type Posting struct {
	Account string `json:"account"`
	Amount  Money  `json:"amount"`
}

// LedgerPosted is a double-entry transaction: its postings sum to zero. It
// says what it is for (the server and the hour [From, To) it covers, or the
// top-up), and chains to the account's previous transaction by hash so an
// edited, dropped or reordered transaction is detectable.
type LedgerPosted struct {
	TxID     string     `json:"txId"`
	Kind     TxKind     `json:"kind"`
	Postings []Posting  `json:"postings"`
	ServerID string     `json:"serverId,omitempty"`
	From     *time.Time `json:"from,omitempty"`
	To       *time.Time `json:"to,omitempty"`
	TopupID  string     `json:"topupId,omitempty"`
	At       time.Time  `json:"at"`
	PrevHash string     `json:"prevHash"`
	Hash     string     `json:"hash"`
}

// Balanced reports whether the postings sum to zero.
func (tx LedgerPosted) Balanced() bool {
	sum := Zero()
	for _, p := range tx.Postings {
		sum = sum.Add(p.Amount)
	}
	return sum.Sign() == 0
}

// AmountFor is the net amount the transaction moves on one ledger account.
func (tx LedgerPosted) AmountFor(ledgerAccount string) Money {
	sum := Zero()
	for _, p := range tx.Postings {
		if p.Account == ledgerAccount {
			sum = sum.Add(p.Amount)
		}
	}
	return sum
}

// ComputeHash is SHA-256 over the previous hash and the transaction's
// canonical bytes (its JSON with Hash empty; Go encodes struct fields in a
// fixed order, so the bytes are stable).
func (tx LedgerPosted) ComputeHash() string {
	tx.Hash = ""
	b, err := json.Marshal(tx)
	if err != nil {
		panic(err) // only plain fields: cannot fail
	}
	h := sha256.New()
	h.Write([]byte(tx.PrevHash))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// sealed returns tx chained after prev.
func (tx LedgerPosted) sealed(prev string) LedgerPosted {
	tx.PrevHash = prev
	tx.Hash = tx.ComputeHash()
	return tx
}

// transfer builds a two-posting transaction moving amount from one ledger
// account to another.
func transfer(kind TxKind, id, to, from string, amount Money, at time.Time) LedgerPosted {
	return LedgerPosted{
		TxID: id, Kind: kind, At: at,
		Postings: []Posting{{Account: to, Amount: amount}, {Account: from, Amount: amount.Neg()}},
	}
}
