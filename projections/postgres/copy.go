package postgres

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cryptovps/cryptovps/domain"
)

// copyRows is rows of one table in COPY's binary format, encoded as the
// events are folded: the ledger is most of a rebuild's rows, and encoding
// them straight into the stream (no row of interface values, no encode plan
// looked up per value) leaves the CPU to PostgreSQL. The encodings are
// pgx's own, byte for byte (TestCopyRowsEncodeAsPgx).
type copyRows struct {
	buf  []byte
	rows int
}

// copyHeader opens every binary COPY stream: the signature, no flags, no
// header extension.
const copyHeader = "PGCOPY\n\377\r\n\000\000\000\000\000\000\000\000\000"

// reserve makes room for a stream of about n bytes.
func (c *copyRows) reserve(n int) {
	if c.buf == nil && n > 0 {
		c.buf = append(make([]byte, 0, n+n/8), copyHeader...)
	}
}

// row starts a row of n fields.
func (c *copyRows) row(n int16) {
	if c.buf == nil {
		c.buf = append(make([]byte, 0, 64<<10), copyHeader...)
	}
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(n))
	c.rows++
}

// stream is the whole COPY data: the rows and the trailer.
func (c *copyRows) stream() []byte { return binary.BigEndian.AppendUint16(c.buf, 0xffff) }

func (c *copyRows) null() { c.buf = binary.BigEndian.AppendUint32(c.buf, math.MaxUint32) }

func (c *copyRows) int8(v int64) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
}

func (c *copyRows) int4(v int32) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 4)
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(v))
}

func (c *copyRows) int2(v int16) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 2)
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(v))
}

func (c *copyRows) text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
}

// textOrNull is text, NULL when empty (nullText).
func (c *copyRows) textOrNull(s string) {
	if s == "" {
		c.null()
		return
	}
	c.text(s)
}

// microsecFromUnixEpochToY2K is where PostgreSQL's timestamps count from.
const microsecFromUnixEpochToY2K = 946684800 * 1000000

// timestamptz is t in microseconds, the nanoseconds below them dropped
// (they go to the _ns columns), as pgx encodes a time.Time.
func (c *copyRows) timestamptz(t time.Time) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(us-microsecFromUnixEpochToY2K))
}

// timestamptzOrNull is timestamptz, NULL for nil.
func (c *copyRows) timestamptzOrNull(t *time.Time) {
	if t == nil {
		c.null()
		return
	}
	c.timestamptz(*t)
}

// numeric is m with its own coefficient and exponent (so its text in
// PostgreSQL is the amount's), as pgx encodes a pgtype.Numeric; amounts
// whose coefficient passes 64 bits go through pgx itself.
func (c *copyRows) numeric(m domain.Money) error {
	at := len(c.buf)
	c.buf = append(c.buf, 0, 0, 0, 0) // the length, once known
	var err error
	if buf, ok := appendNumeric(c.buf, m.Decimal()); ok {
		c.buf = buf
	} else if c.buf, err = (pgtype.NumericCodec{}).PlanEncode(nil, pgtype.NumericOID, pgtype.BinaryFormatCode,
		numeric(m)).Encode(numeric(m), c.buf); err != nil {
		return fmt.Errorf("encode %s: %w", m, err)
	}
	binary.BigEndian.PutUint32(c.buf[at:], uint32(len(c.buf)-at-4))
	return nil
}

// pow10 are the powers of ten a uint64 holds.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// appendNumeric is pgx's binary numeric encoding (base-10,000 digits
// aligned on the decimal point, fraction digits kept down to the
// exponent's) for a finite decimal whose coefficient fits 64 bits; ok is
// false for the others.
func appendNumeric(buf []byte, d *apd.Decimal) (_ []byte, ok bool) {
	if d.Form != apd.Finite || !d.Coeff.IsUint64() || d.Exponent < -16 || d.Exponent > 16 {
		return buf, false
	}
	coeff, exp := d.Coeff.Uint64(), d.Exponent
	// Down to an exponent that is a multiple of 4, as pgx does.
	if r := ((exp % 4) + 4) % 4; r != 0 {
		if coeff > math.MaxUint64/pow10[r] {
			return buf, false
		}
		coeff, exp = coeff*pow10[r], exp-r
	}
	var whole, frac [8]uint16 // least significant first
	nw, nf := 0, 0
	w := coeff
	if exp < 0 {
		div := pow10[-exp]
		w = coeff / div
		f := coeff % div
		for range -exp / 4 {
			frac[nf] = uint16(f % 10000)
			f /= 10000
			nf++
		}
	}
	for ; w != 0; w /= 10000 {
		whole[nw] = uint16(w % 10000)
		nw++
	}
	var weight int32
	if nw > 0 {
		weight = int32(nw - 1)
		if exp > 0 {
			weight += exp / 4
		}
	} else {
		weight = exp/4 - 1 + int32(nf)
	}
	var sign uint16
	if d.Negative && coeff != 0 {
		sign = 16384
	}
	var dscale uint16
	if d.Exponent < 0 {
		dscale = uint16(-d.Exponent)
	}
	buf = binary.BigEndian.AppendUint16(buf, uint16(nw+nf))
	buf = binary.BigEndian.AppendUint16(buf, uint16(int16(weight)))
	buf = binary.BigEndian.AppendUint16(buf, sign)
	buf = binary.BigEndian.AppendUint16(buf, dscale)
	for i := nw - 1; i >= 0; i-- {
		buf = binary.BigEndian.AppendUint16(buf, whole[i])
	}
	for i := nf - 1; i >= 0; i-- {
		buf = binary.BigEndian.AppendUint16(buf, frac[i])
	}
	return buf, true
}
