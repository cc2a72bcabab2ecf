package eventstore

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
)

// Shape spells a Go type's shape: its fields, their types and tags, down to
// the types that encode themselves. Snapshots of folded state (aggregate
// snapshots, the in-memory read model's) are keyed on it, so that a build
// whose state types differ never reads another build's snapshot as its own.
func Shape(t reflect.Type) string {
	var b strings.Builder
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		b.WriteString(t.String())
		if seen[t] {
			return
		}
		seen[t] = true
		if t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler) ||
			t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) {
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			b.WriteByte('[')
			walk(t.Elem())
			b.WriteByte(']')
		case reflect.Map:
			b.WriteByte('[')
			walk(t.Key())
			b.WriteByte(':')
			walk(t.Elem())
			b.WriteByte(']')
		case reflect.Struct:
			b.WriteByte('{')
			for i := range t.NumField() {
				f := t.Field(i)
				fmt.Fprintf(&b, "%s %q ", f.Name, f.Tag)
				walk(f.Type)
				b.WriteByte(';')
			}
			b.WriteByte('}')
		}
	}
	walk(t)
	return b.String()
}

var (
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	jsonMarshaler = reflect.TypeFor[interface{ MarshalJSON() ([]byte, error) }]()
)
