package postgres

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cryptovps/cryptovps/domain"
)

// pgxField is value as pgx encodes it for a binary COPY into a column of
// type oid: its length and bytes.
func pgxField(t *testing.T, oid uint32, value any) []byte {
	t.Helper()
	b, err := pgtype.NewMap().Encode(oid, pgtype.BinaryFormatCode, value, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	var c copyRows
	if b == nil {
		c.null()
	} else {
		c.text(string(b))
	}
	return c.buf
}

// The ledger's rows are encoded by hand: each field must be the bytes pgx
// would send (what the rows were before), for every kind of value.
func TestCopyRowsEncodeAsPgx(t *testing.T) {
	field := func(enc func(c *copyRows)) []byte {
		var c copyRows
		enc(&c)
		return c.buf
	}
	check := func(what string, got, want []byte) {
		t.Helper()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: % x, pgx: % x", what, got, want)
		}
	}
	r := rand.New(rand.NewPCG(17, 17))
	amounts := []string{"0", "-0", "0.00", "-0.000", "1", "10", "100", "1000", "10000", "0.014", "-0.014", "10000.00",
		"-10000.00", "9.986", "0.0001", "0.00001", "99999999.99999999", "18446744073709551615", "18446744073709551616",
		"1844674407370955161.5", "0.1844674407370955161", "0.0000000000000001", "0.00000000000000001",
		"123456789012345678901234.5678901"}
	for range 20000 {
		s := fmt.Sprint(r.Uint64() >> r.IntN(65))
		if r.IntN(4) == 0 {
			s += "0000000000"[:r.IntN(10)]
		}
		if point := r.IntN(len(s) + 12); point > 0 {
			// A decimal point, after leading zeros if it is further left than the digits.
			for len(s) < point {
				s = "0" + s
			}
			s = s[:len(s)-point] + "." + s[len(s)-point:]
			if s[0] == '.' {
				s = "0" + s
			}
		}
		if r.IntN(2) == 0 {
			s = "-" + s
		}
		amounts = append(amounts, s)
	}
	parsed := 0
	for _, s := range amounts {
		m, err := domain.ParseMoney(s)
		if err != nil {
			continue // not an amount
		}
		parsed++
		check("numeric "+s, field(func(c *copyRows) {
			if err := c.numeric(m); err != nil {
				t.Fatal(err)
			}
		}), pgxField(t, pgtype.NumericOID, numeric(m)))
	}
	if parsed < 19000 {
		t.Fatalf("only %d of %d amounts parsed", parsed, len(amounts))
	}
	// Exponents above zero (no amount's text has one, arithmetic may).
	for range 5000 {
		var d apd.Decimal
		d.Coeff.SetUint64(r.Uint64() >> r.IntN(65))
		d.Exponent, d.Negative = int32(r.IntN(40)-20), r.IntN(2) == 0
		want := pgtype.Numeric{Int: d.Coeff.MathBigInt(), Exp: d.Exponent, Valid: true}
		if d.Negative {
			want.Int.Neg(want.Int)
		}
		wantBytes, err := pgtype.NewMap().Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, want, []byte{})
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := appendNumeric(nil, &d); ok && !bytes.Equal(got, wantBytes) {
			t.Errorf("numeric %s: % x, pgx: % x", d.String(), got, wantBytes)
		}
	}
	for _, at := range []time.Time{time.Date(2026, 12, 3, 18, 1, 2, 123456789, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)), time.Time{},
		time.Unix(0, 1), time.Unix(-1, 999), time.Date(2300, 1, 1, 0, 0, 0, 1000, time.UTC)} {
		check("timestamptz "+at.String(), field(func(c *copyRows) { c.timestamptz(at) }), pgxField(t, pgtype.TimestamptzOID, at))
		check("timestamptz *"+at.String(), field(func(c *copyRows) { c.timestamptzOrNull(&at) }), pgxField(t, pgtype.TimestamptzOID, &at))
	}
	check("timestamptz nil", field(func(c *copyRows) { c.timestamptzOrNull(nil) }), pgxField(t, pgtype.TimestamptzOID, (*time.Time)(nil)))
	for _, v := range []int64{0, 1, -1, 1 << 40, -1 << 62} {
		check(fmt.Sprint("int8 ", v), field(func(c *copyRows) { c.int8(v) }), pgxField(t, pgtype.Int8OID, v))
		check(fmt.Sprint("int4 ", v), field(func(c *copyRows) { c.int4(int32(v)) }), pgxField(t, pgtype.Int4OID, int32(v)))
		check(fmt.Sprint("int2 ", v), field(func(c *copyRows) { c.int2(int16(v)) }), pgxField(t, pgtype.Int2OID, int16(v)))
	}
	for _, s := range []string{"", "a", "customer:ab-cd", "é"} {
		var p *string
		if s != "" {
			p = &s
		}
		check("text "+s, field(func(c *copyRows) { c.text(s) }), pgxField(t, pgtype.TextOID, s))
		check("text or null "+s, field(func(c *copyRows) { c.textOrNull(s) }), pgxField(t, pgtype.TextOID, p))
	}
}
