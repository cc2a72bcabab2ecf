// Package jsonpack is the embedded event store's compact binary form of a
// JSON payload. It reads back to exactly the compact JSON it was made from
// (byte for byte: strings keep their escapes, numbers their spelling), and
// it decodes straight into Go values, as json.Unmarshal would decode that
// JSON, without the JSON in between.
//
// It is smaller than JSON because object keys (and the prefixes of prefixed
// identifiers, like "customer:" in "customer:<uuid>") become numbers in a
// table the store keeps beside the log (Symbols), and because the strings
// events are full of are kept as what they are: a UUID in 16 bytes, a
// lowercase hex digest in half its length, a UTC timestamp as Go writes it
// in a few varint bytes. Each of these is used only when the text it reads
// back to is exactly the original; anything else stays as its JSON text.
//
// A packed value is one tag byte and what the tag says:
//
//	tNull, tFalse, tTrue
//	tUint       uvarint: a canonical non-negative integer literal (0, or no leading zero; at most 19 digits)
//	tNumber     uvarint length, the number literal as written
//	tString     uvarint length, the bytes between the quotes as written (escapes included)
//	tUUID       16 bytes: a lowercase canonical UUID string
//	tPrefixUUID symbol, 16 bytes: a string of a prefix then a lowercase canonical UUID
//	tHex        uvarint n, n bytes: a lowercase hex string of 2n digits
//	tTime       zigzag varint Unix seconds, uvarint nanoseconds: a UTC RFC 3339 time as time.Time writes it
//	tObject     uvarint count, then count times a symbol (the key) and a value
//	tArray      uvarint count, then count values
//	tRaw        uvarint length, compact JSON: a payload Pack could not represent exactly
//
// A symbol is a uvarint: 0 is followed by the text inline (uvarint length,
// bytes as written between the quotes), n > 0 is entry n of the Symbols.
package jsonpack

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	tNull byte = iota
	tFalse
	tTrue
	tUint
	tNumber
	tString
	tUUID
	tPrefixUUID
	tHex
	tTime
	tObject
	tArray
	tRaw
)

// Limits on what becomes a symbol: keys and prefixes are few and short in
// real payloads; a payload with many odd keys must not grow the table
// without bound (past it, they are simply written inline).
const (
	maxSymbolLen = 40
	MaxSymbols   = 1 << 16
	// maxDepth bounds nesting, as a guard on recursion over stored bytes.
	maxDepth = 1000
)

var errCorrupt = errors.New("jsonpack: corrupt packed value")

// Symbols is the table of keys and prefixes packed values refer to by
// number: entry n (from 1) never changes once given. A writer numbers a new
// symbol at once (Intern) and persists every symbol not yet persisted in its
// next commit (Unpersisted, Persisted), before or with the first value that
// uses it; so a value in the file never refers to a symbol the file lacks,
// and readers, which only meet symbols through stored values, always find
// them here. It is safe for concurrent use.
type Symbols struct {
	mu          sync.Mutex
	codes       map[string]uint32
	persistedTo int // entries up to this one are in the file
	// names is the table, replaced (never modified where a reader can
	// see it) when it grows, so readers take it without a lock.
	names atomic.Pointer[[]string]
}

// NewSymbols returns a table holding names as entries 1, 2, ...: the ones
// read back from the file, so all persisted.
func NewSymbols(names []string) *Symbols {
	s := &Symbols{codes: make(map[string]uint32, len(names)), persistedTo: len(names)}
	cp := append(make([]string, 0, len(names)+64), names...)
	for i, n := range cp {
		s.codes[n] = uint32(i + 1)
	}
	s.names.Store(&cp)
	return s
}

func (s *Symbols) table() []string { return *s.names.Load() }

// code returns the symbol of name, numbering it if it qualifies and is new,
// or 0: write it inline.
func (s *Symbols) code(name []byte) uint32 {
	if len(name) == 0 || len(name) > maxSymbolLen {
		return 0
	}
	for _, c := range name {
		// Plain printable ASCII without quotes or escapes: keys and
		// prefixes, not text.
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return 0
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.codes[string(name)]; ok {
		return c
	}
	names := s.table()
	if len(names) >= MaxSymbols {
		return 0
	}
	n := string(name)
	// Appending may write into spare capacity of the array readers share:
	// safe, as none reads past the length it loaded, and the longer header
	// is published only after the write.
	grown := append(names, n)
	c := uint32(len(grown))
	s.codes[n] = c
	s.names.Store(&grown)
	return c
}

// Unpersisted returns the symbols numbered but not yet persisted, and the
// number of the first of them.
func (s *Symbols) Unpersisted() (first uint32, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.table()
	return uint32(s.persistedTo + 1), append([]string(nil), t[s.persistedTo:]...)
}

// Persisted records that the symbols up to upTo are in the file.
func (s *Symbols) Persisted(upTo uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int(upTo) > s.persistedTo {
		s.persistedTo = int(upTo)
	}
}

// Len is the number of symbols.
func (s *Symbols) Len() int { return len(s.table()) }

// Pack appends the packed form of the JSON value src to dst. src must be
// one valid JSON value (whitespace around and inside it is dropped, as
// json.Compact drops it); Pack checks this as strictly as json.Valid and
// fails on anything else, and on nesting deeper than it allows. Symbols
// new to syms are numbered in it.
//
// What it packs reads back (AppendJSON) to exactly json.Compact(src), by
// construction: keys, strings and number literals it does not recognise
// are kept as the bytes written, and each compact form (UUID, hex, time,
// integer) is used only when its text reads back the same (for a time,
// checked by formatting it again).
func Pack(dst, src []byte, syms *Symbols) ([]byte, error) {
	p := packer{src: src, syms: syms, out: dst}
	p.skipSpace()
	if err := p.value(0); err != nil {
		return dst, err
	}
	p.skipSpace()
	if p.i != len(p.src) {
		return dst, fmt.Errorf("jsonpack: trailing data after the JSON value at offset %d", p.i)
	}
	return p.out, nil
}

// PackExact packs src as Pack does, in one pass: what Pack accepts is
// valid JSON and reads back exactly (see Pack). A valid value Pack cannot
// represent (nested too deep) is kept as its compact JSON instead (tRaw);
// invalid JSON is an error.
func PackExact(dst, src []byte, syms *Symbols) ([]byte, error) {
	start := len(dst)
	if out, err := Pack(dst, src, syms); err == nil {
		return out, nil
	}
	var compact bytes.Buffer
	compact.Grow(len(src))
	if err := json.Compact(&compact, src); err != nil {
		return dst[:start], fmt.Errorf("jsonpack: %w", err)
	}
	out := append(dst[:start], tRaw)
	out = binary.AppendUvarint(out, uint64(compact.Len()))
	return append(out, compact.Bytes()...), nil
}

type packer struct {
	src  []byte
	i    int
	syms *Symbols
	out  []byte
}

func (p *packer) skipSpace() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *packer) errf(format string, args ...any) error {
	return fmt.Errorf("jsonpack: offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *packer) value(depth int) error {
	if depth > maxDepth {
		return p.errf("nested too deep")
	}
	if p.i >= len(p.src) {
		return p.errf("unexpected end")
	}
	switch c := p.src[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		raw, err := p.str()
		if err != nil {
			return err
		}
		p.out = appendString(p.out, raw, p.syms)
		return nil
	case c == 't':
		return p.lit("true", tTrue)
	case c == 'f':
		return p.lit("false", tFalse)
	case c == 'n':
		return p.lit("null", tNull)
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		if err := p.number(); err != nil {
			return err
		}
		p.out = appendNumber(p.out, p.src[start:p.i])
		return nil
	default:
		return p.errf("unexpected %q", c)
	}
}

func (p *packer) lit(word string, tag byte) error {
	if !bytes.HasPrefix(p.src[p.i:], []byte(word)) {
		return p.errf("bad literal")
	}
	p.i += len(word)
	p.out = append(p.out, tag)
	return nil
}

// number reads a number literal, as strictly as JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *packer) number() error {
	src, i := p.src, p.i
	digits := func() bool {
		from := i
		for i < len(src) && src[i] >= '0' && src[i] <= '9' {
			i++
		}
		return i > from
	}
	if i < len(src) && src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case !digits():
		p.i = i
		return p.errf("bad number")
	}
	if i < len(src) && src[i] == '.' {
		i++
		if !digits() {
			p.i = i
			return p.errf("bad number")
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if !digits() {
			p.i = i
			return p.errf("bad number")
		}
	}
	p.i = i
	return nil
}

// str reads a string literal and returns the bytes between its quotes,
// checked as json.Valid checks them: no control characters, only JSON's
// escapes (the bytes are kept as written, escapes and all, so whatever
// they spell reads back the same).
func (p *packer) str() ([]byte, error) {
	p.i++ // opening quote
	start := p.i
	src := p.src
	for i := p.i; i < len(src); {
		switch c := src[i]; {
		case c == '"':
			p.i = i + 1
			return src[start:i], nil
		case c < 0x20:
			p.i = i
			return nil, p.errf("control character in a string")
		case c == '\\':
			if i+1 >= len(src) {
				p.i = i
				return nil, p.errf("unterminated string")
			}
			switch src[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(src) || !isHex4(src[i+2:i+6]) {
					p.i = i
					return nil, p.errf("bad \\u escape")
				}
				i += 6
			default:
				p.i = i
				return nil, p.errf("bad escape")
			}
		default:
			i++
		}
	}
	p.i = len(src)
	return nil, p.errf("unterminated string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// counted writes a container: its tag, then its count, which is known only
// once the elements are written: they are written first and moved up to
// make room for the count (a fixed-width count would waste bytes).
func (p *packer) counted(tag byte, body func() (int, error)) error {
	p.out = append(p.out, tag)
	at := len(p.out)
	n, err := body()
	if err != nil {
		return err
	}
	var cnt [binary.MaxVarintLen64]byte
	w := binary.PutUvarint(cnt[:], uint64(n))
	p.out = append(p.out, cnt[:w]...)
	copy(p.out[at+w:], p.out[at:len(p.out)-w])
	copy(p.out[at:], cnt[:w])
	return nil
}

func (p *packer) object(depth int) error {
	p.i++ // {
	return p.counted(tObject, func() (int, error) {
		n := 0
		p.skipSpace()
		if p.i < len(p.src) && p.src[p.i] == '}' {
			p.i++
			return 0, nil
		}
		for {
			p.skipSpace()
			if p.i >= len(p.src) || p.src[p.i] != '"' {
				return 0, p.errf("expected a key")
			}
			key, err := p.str()
			if err != nil {
				return 0, err
			}
			p.out = appendSymbol(p.out, key, p.syms)
			p.skipSpace()
			if p.i >= len(p.src) || p.src[p.i] != ':' {
				return 0, p.errf("expected ':'")
			}
			p.i++
			p.skipSpace()
			if err := p.value(depth + 1); err != nil {
				return 0, err
			}
			n++
			p.skipSpace()
			if p.i >= len(p.src) {
				return 0, p.errf("unterminated object")
			}
			switch p.src[p.i] {
			case ',':
				p.i++
			case '}':
				p.i++
				return n, nil
			default:
				return 0, p.errf("expected ',' or '}'")
			}
		}
	})
}

func (p *packer) array(depth int) error {
	p.i++ // [
	return p.counted(tArray, func() (int, error) {
		n := 0
		p.skipSpace()
		if p.i < len(p.src) && p.src[p.i] == ']' {
			p.i++
			return 0, nil
		}
		for {
			p.skipSpace()
			if err := p.value(depth + 1); err != nil {
				return 0, err
			}
			n++
			p.skipSpace()
			if p.i >= len(p.src) {
				return 0, p.errf("unterminated array")
			}
			switch p.src[p.i] {
			case ',':
				p.i++
			case ']':
				p.i++
				return n, nil
			default:
				return 0, p.errf("expected ',' or ']'")
			}
		}
	})
}

func appendSymbol(out, name []byte, syms *Symbols) []byte {
	if c := syms.code(name); c != 0 {
		return binary.AppendUvarint(out, uint64(c))
	}
	out = append(out, 0)
	out = binary.AppendUvarint(out, uint64(len(name)))
	return append(out, name...)
}

func appendNumber(out, lit []byte) []byte {
	if canonicalUint(lit) {
		var v uint64
		for _, d := range lit {
			v = v*10 + uint64(d-'0')
		}
		out = append(out, tUint)
		return binary.AppendUvarint(out, v)
	}
	out = append(out, tNumber)
	out = binary.AppendUvarint(out, uint64(len(lit)))
	return append(out, lit...)
}

// canonicalUint: "0", or up to 19 digits without a leading zero (fits in
// a uint64, and prints back the same).
func canonicalUint(lit []byte) bool {
	if len(lit) == 0 || len(lit) > 19 || (lit[0] == '0' && len(lit) > 1) {
		return false
	}
	for _, d := range lit {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// appendString packs the string whose literal content (between the quotes)
// is raw, in the most compact form that reads back to exactly raw.
func appendString(out, raw []byte, syms *Symbols) []byte {
	switch {
	case len(raw) == 36 && isUUID(raw):
		out = append(out, tUUID)
		return appendUUID(out, raw)
	case len(raw) > 36 && len(raw) <= 36+maxSymbolLen && isUUID(raw[len(raw)-36:]):
		if c := syms.code(raw[:len(raw)-36]); c != 0 {
			out = append(out, tPrefixUUID)
			out = binary.AppendUvarint(out, uint64(c))
			return appendUUID(out, raw[len(raw)-36:])
		}
	case len(raw) >= 16 && len(raw)%2 == 0 && isLowerHex(raw):
		out = append(out, tHex)
		out = binary.AppendUvarint(out, uint64(len(raw)/2))
		for i := 0; i < len(raw); i += 2 {
			out = append(out, unhex(raw[i])<<4|unhex(raw[i+1]))
		}
		return out
	case len(raw) >= 20 && len(raw) <= 30 && raw[len(raw)-1] == 'Z' && raw[4] == '-' && raw[10] == 'T':
		if t, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil && t.Year() >= 0 && t.Year() <= 9999 {
			var buf [32]byte
			if bytes.Equal(t.UTC().AppendFormat(buf[:0], time.RFC3339Nano), raw) {
				out = append(out, tTime)
				out = binary.AppendVarint(out, t.Unix())
				return binary.AppendUvarint(out, uint64(t.Nanosecond()))
			}
		}
	}
	out = append(out, tString)
	out = binary.AppendUvarint(out, uint64(len(raw)))
	return append(out, raw...)
}

func isUUID(b []byte) bool {
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

func appendUUID(out, s []byte) []byte {
	for i := 0; i < 36; {
		if s[i] == '-' {
			i++
			continue
		}
		out = append(out, unhex(s[i])<<4|unhex(s[i+1]))
		i += 2
	}
	return out
}

const hexDigits = "0123456789abcdef"

// appendUUIDText writes 16 bytes as a lowercase canonical UUID.
func appendUUIDText(out, b []byte) []byte {
	for i, x := range b[:16] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexDigits[x>>4], hexDigits[x&15])
	}
	return out
}

// AppendJSON appends the compact JSON the packed value b reads back to;
// syms is the symbol table (Symbols.table, or the one a reader loaded).
func AppendJSON(dst, b []byte, syms []string) ([]byte, error) {
	r := reader{b: b, syms: syms}
	out, err := r.appendJSON(dst, 0)
	if err != nil {
		return dst, err
	}
	if r.i != len(b) {
		return dst, errCorrupt
	}
	return out, nil
}

// reader walks packed bytes.
type reader struct {
	b    []byte
	i    int
	syms []string
}

func (r *reader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errCorrupt
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *reader) uvarint() (uint64, error) {
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		return 0, errCorrupt
	}
	r.i += n
	return v, nil
}

func (r *reader) varint() (int64, error) {
	v, n := binary.Varint(r.b[r.i:])
	if n <= 0 {
		return 0, errCorrupt
	}
	r.i += n
	return v, nil
}

func (r *reader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(r.b)-r.i) {
		return nil, errCorrupt
	}
	out := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return out, nil
}

func (r *reader) sized() ([]byte, error) {
	n, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	return r.bytes(n)
}

// symbol returns a symbol's text: a table entry or the inline bytes.
func (r *reader) symbol() (text []byte, code uint32, name string, err error) {
	c, err := r.uvarint()
	if err != nil {
		return nil, 0, "", err
	}
	if c == 0 {
		text, err = r.sized()
		return text, 0, "", err
	}
	if c > uint64(len(r.syms)) {
		return nil, 0, "", fmt.Errorf("jsonpack: unknown symbol %d (the table has %d)", c, len(r.syms))
	}
	return nil, uint32(c), r.syms[c-1], nil
}

// count reads a container's element count, bounded by what the bytes left
// could hold, so corrupt data cannot make a huge allocation.
func (r *reader) count() (int, error) {
	n, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)-r.i) {
		return 0, errCorrupt
	}
	return int(n), nil
}

func (r *reader) time() (time.Time, error) {
	sec, err := r.varint()
	if err != nil {
		return time.Time{}, err
	}
	nsec, err := r.uvarint()
	if err != nil || nsec >= 1e9 {
		return time.Time{}, errCorrupt
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}

func (r *reader) appendJSON(out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return out, errCorrupt
	}
	tag, err := r.byte()
	if err != nil {
		return out, err
	}
	switch tag {
	case tNull:
		return append(out, "null"...), nil
	case tFalse:
		return append(out, "false"...), nil
	case tTrue:
		return append(out, "true"...), nil
	case tUint:
		v, err := r.uvarint()
		if err != nil {
			return out, err
		}
		return appendUint(out, v), nil
	case tNumber, tRaw:
		b, err := r.sized()
		return append(out, b...), err
	case tObject:
		n, err := r.count()
		if err != nil {
			return out, err
		}
		out = append(out, '{')
		for k := range n {
			if k > 0 {
				out = append(out, ',')
			}
			text, _, name, err := r.symbol()
			if err != nil {
				return out, err
			}
			out = append(out, '"')
			if text != nil {
				out = append(out, text...)
			} else {
				out = append(out, name...)
			}
			out = append(out, '"', ':')
			if out, err = r.appendJSON(out, depth+1); err != nil {
				return out, err
			}
		}
		return append(out, '}'), nil
	case tArray:
		n, err := r.count()
		if err != nil {
			return out, err
		}
		out = append(out, '[')
		for k := range n {
			if k > 0 {
				out = append(out, ',')
			}
			if out, err = r.appendJSON(out, depth+1); err != nil {
				return out, err
			}
		}
		return append(out, ']'), nil
	default:
		out = append(out, '"')
		out, err = r.appendText(out, tag)
		return append(out, '"'), err
	}
}

// appendText appends the content of a string value (without quotes) whose
// tag has been read.
func (r *reader) appendText(out []byte, tag byte) ([]byte, error) {
	switch tag {
	case tString:
		b, err := r.sized()
		return append(out, b...), err
	case tUUID:
		b, err := r.bytes(16)
		if err != nil {
			return out, err
		}
		return appendUUIDText(out, b), nil
	case tPrefixUUID:
		text, _, name, err := r.symbol()
		if err != nil {
			return out, err
		}
		if text != nil {
			out = append(out, text...)
		} else {
			out = append(out, name...)
		}
		b, err := r.bytes(16)
		if err != nil {
			return out, err
		}
		return appendUUIDText(out, b), nil
	case tHex:
		b, err := r.sized()
		if err != nil {
			return out, err
		}
		for _, x := range b {
			out = append(out, hexDigits[x>>4], hexDigits[x&15])
		}
		return out, nil
	case tTime:
		t, err := r.time()
		if err != nil {
			return out, err
		}
		return t.AppendFormat(out, time.RFC3339Nano), nil
	}
	return out, errCorrupt
}

func appendUint(out []byte, v uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(out, buf[i:]...)
}

// skip moves past one value.
func (r *reader) skip(depth int) error {
	if depth > maxDepth {
		return errCorrupt
	}
	tag, err := r.byte()
	if err != nil {
		return err
	}
	switch tag {
	case tNull, tFalse, tTrue:
		return nil
	case tUint:
		_, err := r.uvarint()
		return err
	case tNumber, tRaw, tString, tHex:
		_, err := r.sized()
		return err
	case tUUID:
		_, err := r.bytes(16)
		return err
	case tPrefixUUID:
		if _, _, _, err := r.symbol(); err != nil {
			return err
		}
		_, err := r.bytes(16)
		return err
	case tTime:
		_, err := r.time()
		return err
	case tObject, tArray:
		n, err := r.count()
		if err != nil {
			return err
		}
		for range n {
			if tag == tObject {
				if _, _, _, err := r.symbol(); err != nil {
					return err
				}
			}
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	return errCorrupt
}
