package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// The fast decoders must agree with encoding/json and ComputeHash on every
// input they accept, and refuse the rest.

func sealed(tx domain.LedgerPosted) domain.LedgerPosted {
	tx.Hash = tx.ComputeHash()
	return tx
}

func sampleTxs() []domain.LedgerPosted {
	from := time.Date(2026, 1, 1, 3, 17, 23, 0, time.UTC)
	to := from.Add(time.Hour)
	frac := time.Date(2026, 2, 28, 23, 59, 59, 120000000, time.UTC)
	return []domain.LedgerPosted{
		sealed(domain.LedgerPosted{TxID: "t1", Kind: domain.TxSignupCredit, At: from,
			Postings: []domain.Posting{{Account: "customer:a", Amount: domain.MustMoney("10.00")}, {Account: "promo:signup", Amount: domain.MustMoney("-10.00")}}}),
		sealed(domain.LedgerPosted{TxID: "t2", Kind: domain.TxCharge, At: from, ServerID: "s1", From: &from, To: &to, PrevHash: "abc",
			Postings: []domain.Posting{{Account: "revenue:compute", Amount: domain.MustMoney("0.014")}, {Account: "customer:a", Amount: domain.MustMoney("-0.014")}}}),
		sealed(domain.LedgerPosted{TxID: "t3", Kind: domain.TxTopup, At: frac, TopupID: "top", PrevHash: "def",
			Postings: []domain.Posting{{Account: "customer:a", Amount: domain.MustMoney("0")}, {Account: "crypto:deposits", Amount: domain.MustMoney("0.000000001")}}}),
		// Not balanced, and a hash that does not match: decoding must not care.
		{TxID: "t4", Kind: "odd", At: frac, Hash: "nope",
			Postings: []domain.Posting{{Account: "customer:a", Amount: domain.MustMoney("123456789.123456789")}}},
	}
}

// norm makes empty byte fields nil, for comparisons.
func norm(l *ledgerTx) ledgerTx {
	n := *l
	for _, f := range []*[]byte{&n.txID, &n.serverID, &n.topupID, &n.prevHash, &n.hash} {
		if len(*f) == 0 {
			*f = nil
		}
	}
	return n
}

func TestDecodeLedgerAgreesWithEncodingJSON(t *testing.T) {
	for _, tx := range sampleTxs() {
		data, err := json.Marshal(tx)
		if err != nil {
			t.Fatal(err)
		}
		got, hashOK, ok := decodeLedger(data, nil)
		if !ok {
			t.Fatalf("canonical %s refused", data)
		}
		want := ledgerOf(tx)
		if !reflect.DeepEqual(norm(got), norm(want)) {
			t.Errorf("%s:\n got %+v\nwant %+v", data, got, want)
		}
		if wantOK := tx.Hash == tx.ComputeHash(); hashOK != wantOK {
			t.Errorf("%s: hash verdict %v, ComputeHash says %v", data, hashOK, wantOK)
		}
	}
}

func TestDecodeLedgerRefusesWhatItCannotProve(t *testing.T) {
	tx := sampleTxs()[1]
	data, _ := json.Marshal(tx)
	s := string(data)
	for name, variant := range map[string]string{
		"whitespace":       strings.Replace(s, `"kind":`, `"kind": `, 1),
		"reordered":        strings.Replace(s, `{"txId":"t2","kind":"charge",`, `{"kind":"charge","txId":"t2",`, 1),
		"empty optional":   strings.Replace(s, `,"at":`, `,"topupId":"","at":`, 1),
		"null time":        strings.Replace(s, `"from":"2026-01-01T03:17:23Z"`, `"from":null`, 1),
		"escaped string":   strings.Replace(s, `"s1"`, `"s\u0031"`, 1),
		"leading zero":     strings.Replace(s, `"-0.014"`, `"-00.014"`, 1),
		"trailing zero ns": strings.Replace(s, `"2026-01-01T03:17:23Z"`, `"2026-01-01T03:17:23.10Z"`, 1),
		"upper-case key":   strings.Replace(s, `"txId"`, `"TxID"`, 1),
		"trailing bytes":   s + " ",
		"html":             strings.Replace(s, `"t2"`, `"<t2>"`, 1),
	} {
		if v := []byte(variant); bytes.Equal(v, data) {
			t.Fatalf("%s: variant did not change anything", name)
		}
		if _, _, ok := decodeLedger([]byte(variant), nil); ok {
			t.Errorf("%s: accepted %s", name, variant)
		}
		// The slow path still gives the same verdict ComputeHash gives.
		e, l, hashOK, err := decodeDomain("LedgerPosted", []byte(variant), newDecoder())
		if err != nil {
			continue // encoding/json refuses it too
		}
		if e != nil || l == nil {
			t.Fatalf("%s: decodeDomain gave %T", name, e)
		}
		var lp domain.LedgerPosted
		if err := json.Unmarshal([]byte(variant), &lp); err != nil {
			t.Fatal(err)
		}
		if want := lp.Hash == lp.ComputeHash(); hashOK != want {
			t.Errorf("%s: hash verdict %v, want %v", name, hashOK, want)
		}
	}
}

// Edits that keep the canonical form are accepted, and then the hash
// tells them apart, exactly as ComputeHash does.
func TestDecodeLedgerTakesCanonicalEdits(t *testing.T) {
	tx := sampleTxs()[1]
	data, _ := json.Marshal(tx)
	s := string(data)
	for name, variant := range map[string]string{
		"unchanged":       s,
		"trailing zero":   strings.Replace(s, `"0.014"`, `"0.0140"`, 1),
		"offset time":     strings.Replace(s, `"from":"2026-01-01T03:17:23Z"`, `"from":"2026-01-01T04:17:23+01:00"`, 1),
		"edited amount":   strings.Replace(s, `"0.014"`, `"0.015"`, 1),
		"edited prevHash": strings.Replace(s, `"abc"`, `"abd"`, 1),
	} {
		got, hashOK, ok := decodeLedger([]byte(variant), nil)
		if !ok {
			t.Errorf("%s: refused %s", name, variant)
			continue
		}
		var lp domain.LedgerPosted
		if err := json.Unmarshal([]byte(variant), &lp); err != nil {
			t.Fatal(err)
		}
		if want := lp.Hash == lp.ComputeHash(); hashOK != want || hashOK != (name == "unchanged") {
			t.Errorf("%s: hash verdict %v, ComputeHash says %v", name, hashOK, want)
		}
		want := ledgerOf(lp)
		if !reflect.DeepEqual(got.postings, want.postings) || !got.from.Equal(want.from) || !bytes.Equal(got.prevHash, want.prevHash) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}
}

func TestParseAmountMatchesMoney(t *testing.T) {
	for _, s := range []string{"0", "1", "10.00", "-10.00", "0.014", "-0.014", "0.000000001", "9223372035.999999999",
		"-9223372035.999999999", "0.00", "100", "12345.6789"} {
		a, ok := parseAmount([]byte(s))
		if !ok {
			t.Errorf("%s refused", s)
			continue
		}
		m := domain.MustMoney(s)
		if m.String() != s {
			t.Fatalf("%s is not canonical for Money (%s)", s, m.String())
		}
		if a.dec().Cmp(m.Decimal()) != 0 {
			t.Errorf("%s parsed as %s", s, a)
		}
	}
	for _, s := range []string{"", "-", "-0", "-0.00", "00", "01.5", ".5", "5.", "1e3", "0.0000000001", "99999999999", "1.2.3", "+1", " 1"} {
		if _, ok := parseAmount([]byte(s)); ok {
			t.Errorf("%q accepted", s)
		}
	}
	// Sums that leave int64 go on exactly in apd.
	big, _ := parseAmount([]byte("9223372035.999999999"))
	sum := big.add(big).add(big.neg())
	if sum.cmp(big) != 0 || sum.String() != "9223372035.999999999" {
		t.Errorf("big sum %s", sum)
	}
	if got := amountOf(domain.MustMoney("0.1234567891")); got.big == nil || got.String() != "0.1234567891" {
		t.Errorf("ten decimals: %s", got)
	}
}

func TestParseTimeZMatchesTimeParse(t *testing.T) {
	for _, s := range []string{"2026-01-01T00:00:00Z", "2024-02-29T23:59:59.999999999Z", "2026-06-30T12:00:00.5Z", "0001-01-01T00:00:00Z"} {
		got, ok := parseTimeZ([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || !got.Equal(want) || got.Location() != want.Location() {
			t.Errorf("%s: %v %v, want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:60Z",
		"2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.50Z", "2026-01-01T00:00:00+00:00", "2026-1-01T00:00:00Z"} {
		if _, ok := parseTimeZ([]byte(s)); ok {
			t.Errorf("%s accepted", s)
		}
	}
}

func TestParseEnvelopeMatchesEncodingJSON(t *testing.T) {
	ev := eventstore.Event{ID: uuid.New(), Stream: "account-é\"x", Version: 7, Position: eventstore.Position{Commit: 9, Prepare: 9},
		Type: "LedgerPosted", Data: json.RawMessage(`{"a":[1,{"b":"}"}],"c":null}`),
		Meta:       eventstore.Metadata{RequestID: "r", Actor: "account:x", Causation: "biller"},
		RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var got eventstore.Event
	if !parseEnvelope(raw, &got, newDecoder(), false) {
		t.Fatalf("refused %s", raw)
	}
	if !reflect.DeepEqual(got, ev) {
		t.Errorf("got %+v\nwant %+v", got, ev)
	}
	// The audit's lite decoding takes the same envelope without what it
	// does not use.
	var lite eventstore.Event
	if !parseEnvelope(raw, &lite, newDecoder(), true) {
		t.Fatal("lite refused")
	}
	want := ev
	want.Meta, want.RecordedAt = eventstore.Metadata{}, time.Time{}
	if !reflect.DeepEqual(lite, want) {
		t.Errorf("lite %+v\nwant %+v", lite, want)
	}
	if pos, ok := quickPosition(raw); ok {
		t.Errorf("quickPosition read %v from a non-store prefix", pos)
	}
	stored := []byte(`{"version":3,"position":{"commit":12,"prepare":12},"recordedAt":"2026-01-01T00:00:00Z","id":"` + ev.ID.String() +
		`","stream":"s","type":"T","data":{},"meta":{}}`)
	if pos, ok := quickPosition(stored); !ok || pos != (eventstore.Position{Commit: 12, Prepare: 12}) {
		t.Errorf("quickPosition: %v %v", pos, ok)
	}
	for _, bad := range []string{`{"version":1,}`, `{"Version":1}`, `{"version":-1}`, `{"data":{"a":1}`, `[]`, `{"version":1} x`} {
		var e eventstore.Event
		if parseEnvelope([]byte(bad), &e, nil, false) {
			t.Errorf("accepted %s", bad)
		}
	}
}
