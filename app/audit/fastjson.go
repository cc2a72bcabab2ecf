package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Decoding with encoding/json costs about 10µs per envelope and as much
// again per LedgerPosted, with ComputeHash another 5µs: more than a million
// events can take in ten seconds on two cores. The log is written by
// json.Marshal, so nearly every event is in one canonical shape; the
// decoders here read exactly that shape, quickly, and give up (ok false) on
// anything else, which then goes through encoding/json. Giving up is always
// safe; accepting is only done where the result is provably what
// encoding/json would have produced.

// decoder is what decoding reuses. Stream names, ledger account names and
// kinds recur on every event: interning them spares a million events
// millions of copies of a few thousand names. Ledger transactions and their
// postings come from arenas, a few allocations per page instead of several
// per event. A decoder is used by one goroutine at a time.
type decoder struct {
	names map[string]string
	txs   []ledgerTx
	posts []posting
}

func newDecoder() *decoder { return &decoder{names: map[string]string{}} }

// maxNames bounds the interning table: a log of millions of streams
// starts it over rather than keeping them all.
const maxNames = 1 << 18

func (d *decoder) intern(b []byte) string {
	if d == nil {
		return string(b)
	}
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	if len(d.names) >= maxNames {
		clear(d.names)
	}
	s := string(b)
	d.names[s] = s
	return s
}

func (d *decoder) newTx() *ledgerTx {
	if d == nil {
		return &ledgerTx{}
	}
	if len(d.txs) == cap(d.txs) {
		d.txs = make([]ledgerTx, 0, 256)
	}
	d.txs = d.txs[:len(d.txs)+1]
	return &d.txs[len(d.txs)-1]
}

// keep copies postings into the arena.
func (d *decoder) keep(ps []posting) []posting {
	if d == nil || len(ps) > 64 {
		return append([]posting(nil), ps...)
	}
	if cap(d.posts)-len(d.posts) < len(ps) {
		d.posts = make([]posting, 0, 1024)
	}
	n := len(d.posts)
	d.posts = append(d.posts, ps...)
	return d.posts[n:len(d.posts):len(d.posts)]
}

// scanner walks JSON bytes.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// tok skips whitespace and takes byte c if it comes next.
func (s *scanner) tok(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// lit takes the literal l if it comes next, with no whitespace: canonical
// JSON has none.
func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

// plain reads a string made only of printable ASCII that encoding/json
// writes unescaped (no quote, backslash, control, <, > or &, nothing beyond
// ASCII), returning its bytes; such a string decodes to exactly its bytes
// and encodes back to them.
func (s *scanner) plain() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c < 0x20 || c >= 0x80 || c == '\\' || c == '<' || c == '>' || c == '&':
			return nil, false
		}
	}
	return nil, false
}

// skipString moves past a string, escapes included.
func (s *scanner) skipString() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			j++
		case '"':
			s.i = j + 1
			return true
		}
	}
	return false
}

// str reads any string: plain ones directly (interned by d if not nil),
// others through encoding/json.
func (s *scanner) str(d *decoder) (string, bool) {
	start := s.i
	if b, ok := s.plain(); ok {
		return d.intern(b), true
	}
	s.i = start
	if !s.skipString() {
		return "", false
	}
	var out string
	if err := json.Unmarshal(s.b[start:s.i], &out); err != nil {
		return "", false
	}
	return out, true
}

func (s *scanner) uint() (uint64, bool) {
	start := s.i
	var n uint64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	return n, s.i > start && (s.i-start == 1 || s.b[start] != '0')
}

// skip moves past one value without decoding it. It does not validate
// what it skips: whoever decodes that value later does.
func (s *scanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}

// object calls field for each key of an object; field must consume the
// value. Unknown keys make field return false: encoding/json matches keys
// case-insensitively, so they are left to it.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.tok('{') {
		return false
	}
	if s.tok('}') {
		return true
	}
	for {
		s.ws()
		key, ok := s.plain()
		if !ok || !s.tok(':') {
			return false
		}
		s.ws()
		if !field(key) {
			return false
		}
		if s.tok(',') {
			continue
		}
		return s.tok('}')
	}
}

// parseEnvelope decodes eventstore.Event's JSON as json.Unmarshal would, for
// the plain shape the stores write; Data aliases raw. Lite skips what the
// audit does not use (recording time, metadata), and d, if not nil,
// interns the names.
func parseEnvelope(raw []byte, ev *eventstore.Event, d *decoder, lite bool) bool {
	s := scanner{b: raw}
	ok := s.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "version":
			ev.Version, ok = s.uint()
		case "position":
			ok = s.object(func(key []byte) bool {
				var ok bool
				switch string(key) {
				case "commit":
					ev.Position.Commit, ok = s.uint()
				case "prepare":
					ev.Position.Prepare, ok = s.uint()
				}
				return ok
			})
		case "recordedAt":
			if lite {
				return s.skip()
			}
			var b []byte
			if b, ok = s.plain(); ok {
				var err error
				ev.RecordedAt, err = time.Parse(time.RFC3339Nano, string(b))
				ok = err == nil
			}
		case "id":
			var b []byte
			if b, ok = s.plain(); ok {
				var err error
				ev.ID, err = uuid.ParseBytes(b)
				ok = err == nil
			}
		case "stream":
			ev.Stream, ok = s.str(d)
		case "type":
			ev.Type, ok = s.str(d)
		case "data":
			start := s.i
			if ok = s.skip(); ok {
				ev.Data = json.RawMessage(raw[start:s.i:s.i])
			}
		case "meta":
			if lite {
				return s.skip()
			}
			ok = s.object(func(key []byte) bool {
				var ok bool
				switch string(key) {
				case "requestId":
					ev.Meta.RequestID, ok = s.str(nil)
				case "actor":
					ev.Meta.Actor, ok = s.str(nil)
				case "causation":
					ev.Meta.Causation, ok = s.str(nil)
				}
				return ok
			})
		}
		return ok
	})
	s.ws()
	return ok && s.i == len(raw)
}

// decodeEnvelope is parseEnvelope with encoding/json behind it.
func decodeEnvelope(raw []byte, d *decoder, lite bool) (eventstore.Event, error) {
	var ev eventstore.Event
	if parseEnvelope(raw, &ev, d, lite) {
		return ev, nil
	}
	ev = eventstore.Event{}
	err := json.Unmarshal(raw, &ev)
	return ev, err
}

// canonicalTime reads a time as time.Time's MarshalJSON writes it.
func (s *scanner) canonicalTime() (time.Time, bool) {
	b, ok := s.plain()
	if !ok {
		return time.Time{}, false
	}
	if t, ok := parseTimeZ(b); ok {
		return t, true
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	var buf [40]byte
	return t, bytes.Equal(t.AppendFormat(buf[:0], time.RFC3339Nano), b)
}

// parseTimeZ reads the UTC form of RFC 3339 that MarshalJSON writes,
// YYYY-MM-DDTHH:MM:SS[.fraction, no trailing zero]Z, without the generic
// layout machinery of time.Parse; ok false for anything else.
func parseTimeZ(b []byte) (time.Time, bool) {
	n := len(b)
	if n < 20 || b[n-1] != 'Z' || b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, w int) int {
		v := 0
		for _, c := range b[i : i+w] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	nsec := 0
	if frac := b[19 : n-1]; len(frac) > 0 {
		if frac[0] != '.' || len(frac) < 2 || len(frac) > 10 || frac[len(frac)-1] == '0' {
			return time.Time{}, false
		}
		for _, c := range frac[1:] {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			nsec = nsec*10 + int(c-'0')
		}
		for range 10 - len(frac) {
			nsec *= 10
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if t.Day() != day { // 31 April and the like: time.Parse refuses them
		return time.Time{}, false
	}
	return t, true
}

// posting and ledgerTx are a LedgerPosted as the fold needs it, with exact
// integer amounts. The byte fields alias the event's stored bytes: they
// are only valid until the fold has taken the event.
type posting struct {
	account string
	amt     amount
}

type ledgerTx struct {
	txID, serverID, topupID, prevHash, hash []byte
	kind                                    string
	postings                                []posting
	from, to, at                            time.Time
	hasFrom, hasTo                          bool
}

func ledgerOf(tx domain.LedgerPosted) *ledgerTx {
	l := &ledgerTx{txID: []byte(tx.TxID), serverID: []byte(tx.ServerID), topupID: []byte(tx.TopupID), kind: string(tx.Kind),
		at: tx.At, prevHash: []byte(tx.PrevHash), hash: []byte(tx.Hash), postings: make([]posting, len(tx.Postings))}
	if tx.From != nil {
		l.from, l.hasFrom = *tx.From, true
	}
	if tx.To != nil {
		l.to, l.hasTo = *tx.To, true
	}
	for i, p := range tx.Postings {
		l.postings[i] = posting{account: p.Account, amt: amountOf(p.Amount)}
	}
	return l
}

// amountFor is the net amount the transaction moves on one ledger account.
func (l *ledgerTx) amountFor(account string) amount {
	var sum amount
	for _, p := range l.postings {
		if p.account == account {
			sum = sum.add(p.amt)
		}
	}
	return sum
}

func (l *ledgerTx) sum() amount {
	var sum amount
	for _, p := range l.postings {
		sum = sum.add(p.amt)
	}
	return sum
}

// decodeLedger decodes a LedgerPosted written by json.Marshal, and checks
// its hash. It accepts only the exact bytes json.Marshal produces for the
// transaction it decodes to (fields in order, omitempty honoured, no
// whitespace, plain strings, canonical times and amounts), so the content
// ComputeHash hashes is these very bytes with the hash value emptied: the
// verdict is Hash == ComputeHash() without encoding anything. ok false:
// use DecodeEvent and ComputeHash.
func decodeLedger(data []byte, d *decoder) (tx *ledgerTx, hashOK, ok bool) {
	s := scanner{b: data}
	str := func(prefix string, required bool) ([]byte, bool) {
		if !s.lit(prefix) {
			return nil, !required
		}
		b, ok := s.plain()
		// omitempty: an empty optional string is never written.
		return b, ok && (required || len(b) > 0)
	}
	var l ledgerTx
	if l.txID, ok = str(`{"txId":`, true); !ok {
		return nil, false, false
	}
	kind, ok := str(`,"kind":`, true)
	if !ok || !s.lit(`,"postings":[`) {
		return nil, false, false
	}
	l.kind = d.intern(kind)
	var buf [4]posting
	ps := buf[:0]
	for {
		account, ok := str(`{"account":`, true)
		if !ok || !s.lit(`,"amount":`) {
			return nil, false, false
		}
		b, ok := s.plain()
		if !ok || !s.lit(`}`) {
			return nil, false, false
		}
		amt, ok := parseAmount(b)
		if !ok {
			return nil, false, false
		}
		ps = append(ps, posting{account: d.intern(account), amt: amt})
		if s.lit(`]`) {
			break
		}
		if !s.lit(`,`) {
			return nil, false, false
		}
	}
	if l.serverID, ok = str(`,"serverId":`, false); !ok {
		return nil, false, false
	}
	if s.lit(`,"from":`) {
		if l.from, ok = s.canonicalTime(); !ok {
			return nil, false, false
		}
		l.hasFrom = true
	}
	if s.lit(`,"to":`) {
		if l.to, ok = s.canonicalTime(); !ok {
			return nil, false, false
		}
		l.hasTo = true
	}
	if l.topupID, ok = str(`,"topupId":`, false); !ok {
		return nil, false, false
	}
	if !s.lit(`,"at":`) {
		return nil, false, false
	}
	if l.at, ok = s.canonicalTime(); !ok {
		return nil, false, false
	}
	if l.prevHash, ok = str(`,"prevHash":`, true); !ok || !s.lit(`,"hash":`) {
		return nil, false, false
	}
	mark := s.i
	if l.hash, ok = s.plain(); !ok || !s.lit(`}`) || s.i != len(data) {
		return nil, false, false
	}

	h := sha256.New()
	h.Write(l.prevHash)
	h.Write(data[:mark])
	h.Write([]byte(`""}`))
	var sum [sha256.Size]byte
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], h.Sum(sum[:0]))
	l.postings = d.keep(ps)
	tx = d.newTx()
	*tx = l
	return tx, bytes.Equal(hexSum[:], l.hash), true
}

// decodeDomain is domain.DecodeEvent, with the fast path for ledger events,
// which come back as a ledgerTx with the verdict on their hash.
func decodeDomain(typ string, data []byte, d *decoder) (e domain.Event, tx *ledgerTx, hashOK bool, err error) {
	if typ == "LedgerPosted" {
		if tx, hashOK, ok := decodeLedger(data, d); ok {
			return nil, tx, hashOK, nil
		}
	}
	e, err = domain.DecodeEvent(typ, data)
	if lp, ok := e.(domain.LedgerPosted); ok {
		return nil, ledgerOf(lp), lp.Hash == lp.ComputeHash(), nil
	}
	return e, nil, false, err
}
