package jsonpack

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Codec reads packed values: back to their JSON, or straight into Go
// values. It learns the Go types it decodes into once and keeps what it
// learnt. It is safe for concurrent use.
type Codec struct {
	syms   *Symbols
	mu     sync.Mutex // held while learning a type
	plans  sync.Map   // reflect.Type -> decoder
	states sync.Pool  // *decState, with its scratch buffer
}

// NewCodec returns a codec of values packed with syms.
func NewCodec(syms *Symbols) *Codec {
	c := &Codec{syms: syms}
	c.states.New = func() any { return &decState{codec: c, scratch: make([]byte, 0, 128)} }
	return c
}

// Symbols is the table the codec reads symbols from.
func (c *Codec) Symbols() *Symbols { return c.syms }

// AppendJSON appends the compact JSON b reads back to.
func (c *Codec) AppendJSON(dst, b []byte) ([]byte, error) { return AppendJSON(dst, b, c.syms.table()) }

// errFallback stops the direct decoding where it would not do exactly what
// json.Unmarshal does (an error json reports its own way, escapes to undo,
// options like ",string"): the value is then decoded from its JSON.
var errFallback = errors.New("jsonpack: decode through JSON")

// Unmarshal decodes the packed value b into v as json.Unmarshal decodes
// the JSON b reads back to (the same values, the same errors). A value it
// cannot decode directly, or one into a v that is not zero (json.Unmarshal
// then merges), goes through that JSON.
func (c *Codec) Unmarshal(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &json.InvalidUnmarshalError{Type: reflect.TypeOf(v)}
	}
	if len(b) > 0 && b[0] != tRaw {
		elem := rv.Elem()
		if allZero(rv.UnsafePointer(), elem.Type().Size()) {
			d := c.states.Get().(*decState)
			d.reader = reader{b: b, syms: c.syms.table()}
			err := c.decoderFor(elem.Type())(d, rv.UnsafePointer())
			done := err == nil && d.i == len(b)
			d.reader = reader{}
			c.states.Put(d)
			if done {
				return nil
			}
			elem.SetZero()
		}
	}
	js, err := c.AppendJSON(nil, b)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, v)
}

// allZero reports whether the n bytes at p are all zero: then the value
// there is its type's zero value (the converse may not hold, say for a
// string of length 0 that points somewhere; such a value takes the exact,
// slower path). Cheaper than reflect's IsZero, which walks the fields.
func allZero(p unsafe.Pointer, n uintptr) bool {
	b := unsafe.Slice((*byte)(p), n)
	for len(b) >= 8 && uintptr(unsafe.Pointer(&b[0]))%8 == 0 {
		if *(*uint64)(unsafe.Pointer(&b[0])) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

type decState struct {
	reader
	codec   *Codec
	scratch []byte
	strings recent
}

// decoder reads one value (its tag first) into the value of its type at p.
type decoder func(d *decState, p unsafe.Pointer) error

func (c *Codec) decoderFor(t reflect.Type) decoder {
	if dec, ok := c.plans.Load(t); ok {
		return dec.(decoder)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.compile(t, map[reflect.Type]*decoder{})
}

// compile returns t's decoder; building holds the types being learnt, so a
// recursive type refers to its own decoder through a pointer set later.
func (c *Codec) compile(t reflect.Type, building map[reflect.Type]*decoder) decoder {
	if dec, ok := c.plans.Load(t); ok {
		return dec.(decoder)
	}
	if p, ok := building[t]; ok {
		return func(d *decState, ptr unsafe.Pointer) error { return (*p)(d, ptr) }
	}
	dec := new(decoder)
	building[t] = dec
	*dec = c.build(t, building)
	c.plans.Store(t, *dec)
	return *dec
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	numberType      = reflect.TypeFor[json.Number]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func (c *Codec) build(t reflect.Type, building map[reflect.Type]*decoder) decoder {
	pt := reflect.PointerTo(t)
	switch {
	case t == timeType:
		return decodeTime
	case t.Kind() == reflect.Pointer:
		return c.pointerDecoder(t, building)
	case pt.Implements(unmarshalerType):
		return unmarshalerDecoder(t)
	case pt.Implements(textType):
		return textDecoder(t)
	case t == numberType:
		return viaJSON(t)
	}
	switch t.Kind() {
	case reflect.Bool:
		return decodeBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intDecoder(t)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintDecoder(t)
	case reflect.Float32, reflect.Float64:
		return floatDecoder(t)
	case reflect.String:
		return decodeString
	case reflect.Struct:
		return c.structDecoder(t, building)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return viaJSON(t) // base64 text, as json has it
		}
		return c.sliceDecoder(t, building)
	case reflect.Map:
		if t.Key().Kind() == reflect.String && !reflect.PointerTo(t.Key()).Implements(textType) {
			return c.mapDecoder(t, building)
		}
	}
	// Arrays, interfaces, maps with other keys...: rare in payloads, and
	// json's rules for them are best left to json.
	return viaJSON(t)
}

// viaJSON decodes the value from its JSON with json.Unmarshal.
func viaJSON(t reflect.Type) decoder {
	return func(d *decState, p unsafe.Pointer) error {
		start := d.i
		if err := d.skip(0); err != nil {
			return err
		}
		js, err := AppendJSON(d.scratch[:0], d.b[start:d.i], d.syms)
		if err != nil {
			return err
		}
		d.scratch = js[:0]
		if err := json.Unmarshal(js, reflect.NewAt(t, p).Interface()); err != nil {
			return errFallback // json reports it, from the whole value
		}
		return nil
	}
}

func (c *Codec) pointerDecoder(t reflect.Type, building map[reflect.Type]*decoder) decoder {
	elem := t.Elem()
	dec := c.compile(elem, building)
	return func(d *decState, p unsafe.Pointer) error {
		if d.i < len(d.b) && d.b[d.i] == tNull {
			d.i++
			*(*unsafe.Pointer)(p) = nil
			return nil
		}
		if *(*unsafe.Pointer)(p) == nil {
			*(*unsafe.Pointer)(p) = reflect.New(elem).UnsafePointer()
		}
		return dec(d, *(*unsafe.Pointer)(p))
	}
}

func unmarshalerDecoder(t reflect.Type) decoder {
	return func(d *decState, p unsafe.Pointer) error {
		start := d.i
		if err := d.skip(0); err != nil {
			return err
		}
		js, err := AppendJSON(d.scratch[:0], d.b[start:d.i], d.syms)
		if err != nil {
			return err
		}
		d.scratch = js[:0]
		if err := reflect.NewAt(t, p).Interface().(json.Unmarshaler).UnmarshalJSON(js); err != nil {
			return errFallback
		}
		return nil
	}
}

func decodeTime(d *decState, p unsafe.Pointer) error {
	if d.i < len(d.b) && d.b[d.i] == tTime {
		d.i++
		t, err := d.time()
		if err != nil {
			return err
		}
		*(*time.Time)(p) = t
		return nil
	}
	return unmarshalerDecoder(timeType)(d, p)
}

// text reads a string value and returns its text, or errFallback for one
// json would have to unescape or repair (escapes, invalid UTF-8) and for a
// value that is not a string. The bytes are valid until the next call.
func (d *decState) text() ([]byte, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	if tag == tString {
		raw, err := d.sized()
		if err != nil {
			return nil, err
		}
		if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
			return nil, errFallback
		}
		return raw, nil
	}
	switch tag {
	case tUUID, tPrefixUUID, tHex, tTime:
		out, err := d.appendText(d.scratch[:0], tag)
		d.scratch = out[:0]
		return out, err
	}
	return nil, errFallback
}

// isNull consumes a null.
func (d *decState) isNull() bool {
	if d.i < len(d.b) && d.b[d.i] == tNull {
		d.i++
		return true
	}
	return false
}

func textDecoder(t reflect.Type) decoder {
	return func(d *decState, p unsafe.Pointer) error {
		if d.isNull() {
			return nil
		}
		b, err := d.text()
		if err != nil {
			return err
		}
		if err := reflect.NewAt(t, p).Interface().(encoding.TextUnmarshaler).UnmarshalText(b); err != nil {
			return errFallback
		}
		return nil
	}
}

func decodeString(d *decState, p unsafe.Pointer) error {
	if d.isNull() {
		return nil
	}
	tag := byte(0)
	if d.i < len(d.b) {
		tag = d.b[d.i]
	}
	b, err := d.text()
	if err != nil {
		return err
	}
	if (tag == tString && len(b) <= 24) || tag == tPrefixUUID {
		*(*string)(p) = d.strings.get(b)
		return nil
	}
	*(*string)(p) = string(b)
	return nil
}

// recent keeps the strings a decoder made last, by a hash of their bytes:
// events repeat the same few words ("charge", "revenue:compute") and, in a
// run of an account's events, the same "customer:<id>": those are shared
// rather than made again for each event.
type recent [64]string

func (r *recent) get(b []byte) string {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &r[h%uint32(len(r))]
	if *slot != string(b) {
		*slot = string(b)
	}
	return *slot
}

func decodeBool(d *decState, p unsafe.Pointer) error {
	tag, err := d.byte()
	if err != nil {
		return err
	}
	switch tag {
	case tNull:
	case tTrue:
		*(*bool)(p) = true
	case tFalse:
		*(*bool)(p) = false
	default:
		return errFallback
	}
	return nil
}

// number reads a number value's literal (nil for null).
func (d *decState) number() ([]byte, error) {
	tag, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tNull:
		return nil, nil
	case tUint:
		v, err := d.uvarint()
		if err != nil {
			return nil, err
		}
		out := appendUint(d.scratch[:0], v)
		d.scratch = out[:0]
		return out, nil
	case tNumber:
		return d.sized()
	}
	return nil, errFallback
}

func intDecoder(t reflect.Type) decoder {
	bits := t.Bits()
	return func(d *decState, p unsafe.Pointer) error {
		lit, err := d.number()
		if err != nil || lit == nil {
			return err
		}
		v, err := strconv.ParseInt(string(lit), 10, 64)
		if err != nil || v<<(64-bits)>>(64-bits) != v {
			return errFallback
		}
		switch bits {
		case 8:
			*(*int8)(p) = int8(v)
		case 16:
			*(*int16)(p) = int16(v)
		case 32:
			*(*int32)(p) = int32(v)
		default:
			*(*int64)(p) = v
		}
		return nil
	}
}

func uintDecoder(t reflect.Type) decoder {
	bits := t.Bits()
	return func(d *decState, p unsafe.Pointer) error {
		lit, err := d.number()
		if err != nil || lit == nil {
			return err
		}
		v, err := strconv.ParseUint(string(lit), 10, 64)
		if err != nil || (bits < 64 && v>>bits != 0) {
			return errFallback
		}
		switch bits {
		case 8:
			*(*uint8)(p) = uint8(v)
		case 16:
			*(*uint16)(p) = uint16(v)
		case 32:
			*(*uint32)(p) = uint32(v)
		default:
			*(*uint64)(p) = v
		}
		return nil
	}
}

func floatDecoder(t reflect.Type) decoder {
	bits := t.Bits()
	return func(d *decState, p unsafe.Pointer) error {
		lit, err := d.number()
		if err != nil || lit == nil {
			return err
		}
		v, err := strconv.ParseFloat(string(lit), bits)
		if err != nil {
			return errFallback
		}
		if bits == 32 {
			*(*float32)(p) = float32(v)
		} else {
			*(*float64)(p) = v
		}
		return nil
	}
}

func (c *Codec) sliceDecoder(t reflect.Type, building map[reflect.Type]*decoder) decoder {
	elem := t.Elem()
	size := elem.Size()
	dec := c.compile(elem, building)
	return func(d *decState, p unsafe.Pointer) error {
		tag, err := d.byte()
		if err != nil {
			return err
		}
		s := reflect.NewAt(t, p).Elem()
		switch tag {
		case tNull:
			s.SetZero()
			return nil
		case tArray:
		default:
			return errFallback
		}
		n, err := d.count()
		if err != nil {
			return err
		}
		// A fresh array of n zero elements, straight into the slice (Set
		// of a MakeSlice would allocate a header as well).
		if n == 0 {
			s.Set(reflect.MakeSlice(t, 0, 0)) // empty, not nil, as json has it
			return nil
		}
		s.SetZero()
		s.Grow(n)
		s.SetLen(n)
		base := s.UnsafePointer()
		for i := range n {
			if err := dec(d, unsafe.Add(base, uintptr(i)*size)); err != nil {
				return err
			}
		}
		return nil
	}
}

func (c *Codec) mapDecoder(t reflect.Type, building map[reflect.Type]*decoder) decoder {
	elem := t.Elem()
	dec := c.compile(elem, building)
	return func(d *decState, p unsafe.Pointer) error {
		tag, err := d.byte()
		if err != nil {
			return err
		}
		m := reflect.NewAt(t, p).Elem()
		switch tag {
		case tNull:
			m.SetZero()
			return nil
		case tObject:
		default:
			return errFallback
		}
		n, err := d.count()
		if err != nil {
			return err
		}
		if m.IsNil() {
			m.Set(reflect.MakeMap(t))
		}
		for range n {
			text, _, name, err := d.symbol()
			if err != nil {
				return err
			}
			if text != nil {
				if bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text) {
					return errFallback
				}
				name = string(text)
			}
			v := reflect.New(elem)
			if err := dec(d, v.UnsafePointer()); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(name).Convert(t.Key()), v.Elem())
		}
		return nil
	}
}

// structPlan decodes objects into one struct type.
type structPlan struct {
	fields []structField
	exact  map[string]int
	// byCode is the field of each symbol (index+1; 0 not looked up yet;
	// -1 no field), grown as symbols are met.
	byCode atomic.Pointer[[]int32]
	mu     sync.Mutex
}

type structField struct {
	name   string
	offset uintptr
	dec    decoder
}

func (c *Codec) structDecoder(t reflect.Type, building map[reflect.Type]*decoder) decoder {
	sp := &structPlan{exact: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return viaJSON(t) // embedded fields: json's promotion rules
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := cutComma(tag)
		if optsHas(opts, "string") {
			return viaJSON(t)
		}
		if name == "" || !validTag(name) {
			name = f.Name
		}
		if _, dup := sp.exact[name]; dup {
			return viaJSON(t) // json's dominant-field rules
		}
		sp.exact[name] = len(sp.fields)
		sp.fields = append(sp.fields, structField{name: name, offset: f.Offset, dec: c.compile(f.Type, building)})
	}
	empty := []int32{}
	sp.byCode.Store(&empty)
	return sp.decode
}

func cutComma(s string) (string, string, bool) {
	if i := bytes.IndexByte([]byte(s), ','); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

func optsHas(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = cutComma(opts)
		if o == want {
			return true
		}
	}
	return false
}

// validTag is encoding/json's rule for a usable tag name.
func validTag(s string) bool {
	for _, c := range s {
		switch {
		case bytes.ContainsRune([]byte("!#$%&()*+-./:;<=>?@[]^_{|}~ "), c):
		case !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c > 0x7f && utf8.ValidRune(c)):
			return false
		}
	}
	return true
}

// field finds the field a key names, as json does: the exact name, else
// the first whose name equals it folding case.
func (sp *structPlan) field(name []byte) int {
	if i, ok := sp.exact[string(name)]; ok {
		return i
	}
	for i, f := range sp.fields {
		if bytes.EqualFold([]byte(f.name), name) {
			return i
		}
	}
	return -1
}

func (sp *structPlan) fieldOfCode(code uint32, name string) int {
	if t := *sp.byCode.Load(); int(code) < len(t) && t[code] != 0 {
		return max(int(t[code]), 0) - 1
	}
	f := sp.field([]byte(name))
	sp.mu.Lock()
	defer sp.mu.Unlock()
	old := *sp.byCode.Load()
	t := make([]int32, max(len(old), int(code)+1+len(old)/2))
	copy(t, old)
	t[code] = int32(f + 1)
	if f < 0 {
		t[code] = -1
	}
	sp.byCode.Store(&t)
	return f
}

func (sp *structPlan) decode(d *decState, p unsafe.Pointer) error {
	tag, err := d.byte()
	if err != nil {
		return err
	}
	switch tag {
	case tNull:
		return nil
	case tObject:
	default:
		return errFallback
	}
	n, err := d.count()
	if err != nil {
		return err
	}
	for range n {
		text, code, name, err := d.symbol()
		if err != nil {
			return err
		}
		var f int
		if text != nil {
			if bytes.IndexByte(text, '\\') >= 0 || !utf8.Valid(text) {
				return errFallback
			}
			f = sp.field(text)
		} else {
			f = sp.fieldOfCode(code, name)
		}
		if f < 0 {
			if err := d.skip(1); err != nil {
				return err
			}
			continue
		}
		fd := &sp.fields[f]
		if err := fd.dec(d, unsafe.Add(p, fd.offset)); err != nil {
			return err
		}
	}
	return nil
}
