package api

import (
	"sync"
	"sync/atomic"
)

// verified remembers the bearer credentials this process has verified, so a
// request carrying one again skips the signature check and the JSON of a
// token (or the hash and the store lookup of an API key). What can change
// after a credential was verified is checked on every request anyway: a
// token's expiry (on the account's clock), the account's token version and
// whether an API key still exists (in the read model). It is bounded: past
// max entries it forgets about a quarter of them, whichever the map gives
// first.
type verified struct {
	max  int64
	n    atomic.Int64
	m    sync.Map // credential -> session
	trim sync.Mutex
}

// maxVerified bounds the cache: about 400 bytes an entry, so 40 MB at most.
const maxVerified = 100_000

func newVerified(max int) *verified { return &verified{max: int64(max)} }

func (v *verified) get(raw string) (session, bool) {
	s, ok := v.m.Load(raw)
	if !ok {
		return session{}, false
	}
	return s.(session), true
}

func (v *verified) put(raw string, s session) {
	if _, loaded := v.m.Swap(raw, s); loaded {
		return
	}
	if v.n.Add(1) > v.max {
		v.shrink()
	}
}

func (v *verified) drop(raw string) {
	if _, loaded := v.m.LoadAndDelete(raw); loaded {
		v.n.Add(-1)
	}
}

// shrink forgets a quarter of the entries; one caller at a time does it.
func (v *verified) shrink() {
	if !v.trim.TryLock() {
		return
	}
	defer v.trim.Unlock()
	left := v.n.Load() / 4
	v.m.Range(func(k, _ any) bool {
		v.drop(k.(string))
		left--
		return left > 0
	})
}
