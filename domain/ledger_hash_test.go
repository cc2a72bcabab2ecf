package domain

import (
	"encoding/json"
	"testing"
	"time"
)

func goldenTx() LedgerPosted {
	from := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	return LedgerPosted{
		TxID: "charge:3f1c0b1e-0000-4000-8000-000000000001:2026-01-02T03", Kind: TxCharge,
		Postings: []Posting{
			{Account: "customer:7d2f", Amount: MustMoney("-0.007")},
			{Account: LedgerRevenueCompute, Amount: MustMoney("0.007")},
		},
		ServerID: "3f1c0b1e-0000-4000-8000-000000000001", From: &from, To: &to,
		At:       time.Date(2026, 1, 2, 3, 0, 0, 123000000, time.UTC),
		PrevHash: "d0e1f2",
	}
}

// The hash of a transaction already written must never change: these are
// the bytes and the hash of a known transaction, fixed forever.
func TestLedgerHashIsGolden(t *testing.T) {
	t.Parallel()
	tx := goldenTx()
	const wantBytes = `{"txId":"charge:3f1c0b1e-0000-4000-8000-000000000001:2026-01-02T03","kind":"charge",` +
		`"postings":[{"account":"customer:7d2f","amount":"-0.007"},{"account":"revenue:compute","amount":"0.007"}],` +
		`"serverId":"3f1c0b1e-0000-4000-8000-000000000001","from":"2026-01-02T03:00:00Z","to":"2026-01-02T04:00:00Z",` +
		`"at":"2026-01-02T03:00:00.123Z","prevHash":"d0e1f2","hash":""}`
	if got := string(tx.canonical()); got != wantBytes {
		t.Fatalf("canonical bytes changed:\n got %s\nwant %s", got, wantBytes)
	}
	const wantHash = "47a30a5917181c95ec3558274fcf31d5683cb9b140effcbabd72618fe821ea67"
	if got := tx.ComputeHash(); got != wantHash {
		t.Fatalf("hash changed: got %s want %s", got, wantHash)
	}
}

// History written before the canonical bytes were explicit hashed the
// struct's JSON with Hash empty: for every shape of transaction the explicit
// bytes are exactly those, so every old chain still verifies.
func TestLedgerCanonicalBytesMatchTheFirstEncoding(t *testing.T) {
	t.Parallel()
	full := goldenTx()
	topup := LedgerPosted{TxID: "topup:x<&>\u2028", Kind: TxTopup, TopupID: "t1", At: time.Unix(5, 1).UTC(),
		Postings: []Posting{{Account: "customer:a", Amount: MustMoney("25.00")}, {Account: LedgerCryptoDeposits, Amount: MustMoney("-25.00")}}}
	empty := LedgerPosted{}
	for name, tx := range map[string]LedgerPosted{"charge": full, "topup": topup, "empty": empty} {
		tx.Hash = ""
		old, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(tx.canonical()); got != string(old) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, old)
		}
	}
}

// The explicit canonical bytes are the first encoding for any strings and
// times, not only the ones the tests above thought of.
func FuzzLedgerCanonicalBytesMatchTheFirstEncoding(f *testing.F) {
	f.Add("charge:a:2026", "customer:7d2f", "srv-1", int64(1767322800123000000))
	f.Add("topup:<&>\u2028\x00\"\\", "crypto:déposits", "", int64(-62135596800000000))
	f.Add("\xff\xfe", "a\tb", "\u2029", int64(0))
	f.Fuzz(func(t *testing.T, id, account, server string, nanos int64) {
		at := time.Unix(0, nanos).UTC()
		tx := LedgerPosted{TxID: id, Kind: TxCharge, ServerID: server, At: at, From: &at, PrevHash: account,
			Postings: []Posting{{Account: account, Amount: MustMoney("-1.5")}, {Account: id, Amount: MustMoney("1.5")}}}
		old, err := json.Marshal(tx)
		if err != nil {
			t.Skip("not encodable:", err)
		}
		if got := string(tx.canonical()); got != string(old) {
			t.Fatalf("\n got %s\nwant %s", got, old)
		}
	})
}

// The hash's own time formatting writes what time.RFC3339Nano does, for
// every UTC time it is used for.
func FuzzLedgerTimeIsRFC3339Nano(f *testing.F) {
	for _, s := range []int64{0, 1, 123000000, 999999999, 1767322800123000000, 1767322800000000001, -62135596800000000000 / 1000} {
		f.Add(s/1e9, s%1e9)
	}
	f.Add(int64(253402300799), int64(999999999)) // 9999-12-31T23:59:59.999999999Z
	f.Add(int64(-62167219200), int64(0))         // 0000-01-01T00:00:00Z
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		at := time.Unix(sec, nsec).UTC()
		if y := at.Year(); y < 0 || y > 9999 {
			t.Skip("out of range")
		}
		y, m, d := at.Date()
		if got, want := string(appendRFC3339NanoUTC(nil, at, y, m, d)), at.Format(time.RFC3339Nano); got != want {
			t.Fatalf("got %s want %s", got, want)
		}
	})
}

// The hash's strings are json.Marshal's for every byte at every place of
// the eight-byte steps it checks them in.
func TestLedgerStringIsJSON(t *testing.T) {
	t.Parallel()
	for n := range 20 {
		for at := range n {
			for c := range 256 {
				s := []byte("abcdefghijklmnopqrstuvwxyz"[:n])
				s[at] = byte(c)
				want, _ := json.Marshal(string(s))
				if got := appendJSONString(nil, string(s)); string(got) != string(want) {
					t.Fatalf("%q: got %s want %s", s, got, want)
				}
			}
		}
	}
}
