package domain

import (
	"bytes"
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
	// TxForfeit moves the balance an owner gave up when their account was
	// forgotten to LedgerRevenueForfeited.
	TxForfeit TxKind = "forfeit"
)

// Ledger account names other than customers'.
const (
	LedgerPromoSignup    = "promo:signup"
	LedgerCryptoDeposits = "crypto:deposits"
	LedgerRevenueCompute = "revenue:compute"
	// LedgerRevenueForfeited holds balances given up by forgotten accounts.
	LedgerRevenueForfeited = "revenue:forfeited"
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
	// InvoiceID is the processor's invoice a top-up credit was paid by.
	InvoiceID string    `json:"invoiceId,omitempty"`
	At        time.Time `json:"at"`
	PrevHash  string    `json:"prevHash"`
	Hash      string    `json:"hash"`
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
// canonical bytes.
func (tx LedgerPosted) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(tx.PrevHash))
	h.Write(tx.canonical())
	return hex.EncodeToString(h.Sum(nil))
}

// canonical is the transaction's hashed bytes, written out field by field.
// They are the bytes the first version hashed (the struct's JSON with Hash
// empty), fixed here explicitly so that adding a field to LedgerPosted can
// never change the hash of a transaction already in the log: a new field is
// hashed only by a deliberate, versioned change to this function.
func (tx LedgerPosted) canonical() []byte {
	var b bytes.Buffer
	field := func(name string, v string) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + name + `":`)
		b.WriteString(v)
	}
	b.WriteByte('{')
	field("txId", jsonString(tx.TxID))
	field("kind", jsonString(string(tx.Kind)))
	var p bytes.Buffer
	p.WriteByte('[')
	for i, po := range tx.Postings {
		if i > 0 {
			p.WriteByte(',')
		}
		p.WriteString(`{"account":` + jsonString(po.Account) + `,"amount":` + jsonString(po.Amount.String()) + `}`)
	}
	p.WriteByte(']')
	if tx.Postings == nil {
		p.Reset()
		p.WriteString("null")
	}
	field("postings", p.String())
	if tx.ServerID != "" {
		field("serverId", jsonString(tx.ServerID))
	}
	if tx.From != nil {
		field("from", jsonTime(*tx.From))
	}
	if tx.To != nil {
		field("to", jsonTime(*tx.To))
	}
	if tx.TopupID != "" {
		field("topupId", jsonString(tx.TopupID))
	}
	// Added with invoices: empty in every earlier transaction, whose bytes
	// (and hash) therefore stay what they were.
	if tx.InvoiceID != "" {
		field("invoiceId", jsonString(tx.InvoiceID))
	}
	field("at", jsonTime(tx.At))
	field("prevHash", jsonString(tx.PrevHash))
	field("hash", `""`)
	b.WriteByte('}')
	return b.Bytes()
}

// jsonString and jsonTime encode like encoding/json (HTML-safe escaping,
// RFC 3339 with nanoseconds), which is what the canonical bytes were first
// defined as. The ids and names in a transaction are plain ASCII, which is
// written as is; anything else takes encoding/json's own escaping.
func jsonString(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always encodes
			return string(b)
		}
	}
	return `"` + s + `"`
}

func jsonTime(t time.Time) string {
	if y := t.Year(); y < 0 || y > 9999 {
		// Years outside 0..9999 do not encode; no clock of ours gets there,
		// and the hash still has to be defined.
		return jsonString(t.String())
	}
	return `"` + t.Format(time.RFC3339Nano) + `"`
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
