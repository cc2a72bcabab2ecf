package memory

import (
	"fmt"
	"reflect"
	"sort"
)

// Diff says where two models differ (empty: they are equal), comparing
// every account, backup and folded stream with reflect.DeepEqual.
func Diff(a, b *Model) string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	b.mu.RLock()
	defer b.mu.RUnlock()
	if a.checkpoint != b.checkpoint {
		return fmt.Sprintf("checkpoint %s, %s", a.checkpoint, b.checkpoint)
	}
	if d := diffMaps("account", a.accounts, b.accounts); d != "" {
		return d
	}
	if d := diffMaps("backup", a.backups, b.backups); d != "" {
		return d
	}
	if d := diffMaps("backups of", a.backupsOf, b.backupsOf); d != "" {
		return d
	}
	if d := diffMaps("folded", a.folded, b.folded); d != "" {
		return d
	}
	return diffLedger(a, b)
}

func diffMaps[K comparable, V any](what string, a, b map[K]V) string {
	var keys []string
	for k, v := range a {
		w, ok := b[k]
		if !ok || !reflect.DeepEqual(v, w) {
			keys = append(keys, fmt.Sprint(k))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, fmt.Sprint(k))
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	for k, v := range a {
		if fmt.Sprint(k) == keys[0] {
			return fmt.Sprintf("%d %ss differ, first %s:\n%+v\n%+v", len(keys), what, keys[0], v, b[k])
		}
	}
	return fmt.Sprintf("%d %ss differ, first %s (only in the second)", len(keys), what, keys[0])
}

// Size is how many accounts, backups and folded streams the model holds.
func Size(m *Model) (accounts, backups, folded int) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.accounts), len(m.backups), len(m.folded)
}

// ShapeKey computes the snapshots' shape key again.
func ShapeKey() string { k := shapeKey(); return string(k[:]) }
