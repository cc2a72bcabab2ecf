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
	return tx.amountWhere(func(account string) bool { return account == ledgerAccount })
}

// CustomerAmount is AmountFor(CustomerLedger(accountID)), without making
// the ledger account's name: replay asks it of every transaction.
func (tx LedgerPosted) CustomerAmount(accountID string) Money {
	const prefix = "customer:"
	return tx.amountWhere(func(account string) bool {
		return len(account) == len(prefix)+len(accountID) && account[:len(prefix)] == prefix && account[len(prefix):] == accountID
	})
}

func (tx LedgerPosted) amountWhere(match func(account string) bool) Money {
	// Most transactions post once to each account: then the amount is the
	// sum (0 + x is x, to the digit and the exponent, for an x that is not
	// zero and no more precise than the arithmetic), without an addition,
	// of which replay makes millions.
	var only *Money
	n := 0
	for i := range tx.Postings {
		if match(tx.Postings[i].Account) {
			only = &tx.Postings[i].Amount
			n++
		}
	}
	if n == 1 && only.Sign() != 0 && only.Exponent() <= 0 && only.d.NumDigits() <= int64(arithmetic.Precision) {
		return *only
	}
	sum := Zero()
	for _, p := range tx.Postings {
		if match(p.Account) {
			sum = sum.Add(p.Amount)
		}
	}
	return sum
}

// ComputeHash is SHA-256 over the previous hash and the transaction's
// canonical bytes.
func (tx LedgerPosted) ComputeHash() string {
	sum := tx.hashSum()
	return hex.EncodeToString(sum[:])
}

// HashOK reports whether Hash is ComputeHash, without making the string:
// the audit checks every transaction of the log.
func (tx LedgerPosted) HashOK() bool {
	sum := tx.hashSum()
	var text [2 * sha256.Size]byte
	hex.Encode(text[:], sum[:])
	return string(text[:]) == tx.Hash
}

func (tx LedgerPosted) hashSum() [sha256.Size]byte {
	// One buffer on the stack for the usual transaction (a charge's bytes
	// are about 500).
	var buf [1024]byte
	b := append(buf[:0], tx.PrevHash...)
	return sha256.Sum256(tx.appendCanonical(b))
}

// canonical is the transaction's hashed bytes, written out field by field.
// They are the bytes the first version hashed (the struct's JSON with Hash
// empty), fixed here explicitly so that adding a field to LedgerPosted can
// never change the hash of a transaction already in the log: a new field is
// hashed only by a deliberate, versioned change to this function.
func (tx LedgerPosted) canonical() []byte { return tx.appendCanonical(nil) }

func (tx LedgerPosted) appendCanonical(b []byte) []byte {
	b = append(b, `{"txId":`...)
	b = appendJSONString(b, tx.TxID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, string(tx.Kind))
	b = append(b, `,"postings":`...)
	if tx.Postings == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, po := range tx.Postings {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"account":`...)
			b = appendJSONString(b, po.Account)
			// An amount's text is digits, a point and a minus: nothing to
			// escape.
			b = append(b, `,"amount":"`...)
			b = po.Amount.appendText(b)
			b = append(b, '"')
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if tx.ServerID != "" {
		b = append(b, `,"serverId":`...)
		b = appendJSONString(b, tx.ServerID)
	}
	if tx.From != nil {
		b = append(b, `,"from":`...)
		b = appendJSONTime(b, *tx.From)
	}
	if tx.To != nil {
		b = append(b, `,"to":`...)
		b = appendJSONTime(b, *tx.To)
	}
	if tx.TopupID != "" {
		b = append(b, `,"topupId":`...)
		b = appendJSONString(b, tx.TopupID)
	}
	// Added with invoices: empty in every earlier transaction, whose bytes
	// (and hash) therefore stay what they were.
	if tx.InvoiceID != "" {
		b = append(b, `,"invoiceId":`...)
		b = appendJSONString(b, tx.InvoiceID)
	}
	b = append(b, `,"at":`...)
	b = appendJSONTime(b, tx.At)
	b = append(b, `,"prevHash":`...)
	b = appendJSONString(b, tx.PrevHash)
	return append(b, `,"hash":""}`...)
}

// appendJSONString appends s as encoding/json writes it: plain printable
// ASCII as is, anything else through json.Marshal (escapes, HTML-safe).
func appendJSONString(b []byte, s string) []byte {
	if !jsonPlainString(s) {
		m, _ := json.Marshal(s) // a string always encodes
		return append(b, m...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// jsonPlainString reports whether every byte of s is jsonPlain, eight
// bytes at a time (the audit hashes every transaction of the log).
func jsonPlainString(s string) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// zero has the high bit of each zero byte of x set, and maybe of bytes
	// above one: exact as to whether there is one.
	zero := func(x uint64) uint64 { return (x - ones) &^ x & highs }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		bad := (x-ones*0x20)&^x&highs | // a byte below 0x20
			((x+ones*(0x7f-0x7e))|x)&highs | // above 0x7e
			zero(x^(ones*'"')) | zero(x^(ones*'\\')) | zero(x^(ones*'<')) | zero(x^(ones*'>')) | zero(x^(ones*'&'))
		if bad != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			return false
		}
	}
	return true
}

// jsonPlain are the bytes encoding/json writes as they are: printable
// ASCII but for the quote, the backslash and the HTML-unsafe <, > and &. A
// table, since the audit hashes every transaction of the log.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

func appendJSONTime(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		// Years outside 0..9999 do not encode; no clock of ours gets there,
		// and the hash still has to be defined.
		return appendJSONString(b, t.String())
	}
	b = append(b, '"')
	if t.Location() == time.UTC {
		b = appendRFC3339NanoUTC(b, t, year, month, day)
	} else {
		b = t.AppendFormat(b, time.RFC3339Nano)
	}
	return append(b, '"')
}

// appendRFC3339NanoUTC appends what t.AppendFormat(b, time.RFC3339Nano)
// does for a UTC time of a year in 0..9999 (whose date is year, month,
// day), about three times faster: the form every time of the log has,
// three in every transaction the audit hashes.
func appendRFC3339NanoUTC(b []byte, t time.Time, year int, month time.Month, day int) []byte {
	hour, minute, sec := t.Clock()
	b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+month/10), byte('0'+month%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		// Nine digits, trailing zeros dropped.
		var frac [9]byte
		for i := 8; i >= 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 9
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, '.')
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
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
