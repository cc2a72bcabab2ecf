// Package keystoretest is the contract every domain.KeyStore adapter must
// meet, written once so the embedded bbolt key store and the PostgreSQL one
// are held to the same behaviour. Ids and lookups carry random parts, so
// the suite also runs against a store that already holds other accounts.
package keystoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
)

// Run runs the contract suite. open must return a ready store and arrange
// for it to be closed (t.Cleanup). Each subtest opens its own store and may
// run in parallel with others.
func Run(t *testing.T, open func(t *testing.T) domain.KeyStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, domain.KeyStore)
	}{
		{"KeyOfAnUnknownAccountIsNotFound", testUnknown},
		{"CreateKeyKeepsTheFirstKey", testCreateKeepsFirst},
		{"ConcurrentCreatorsAgree", testConcurrentCreate},
		{"ClaimKeepsTheFirstAccount", testClaim},
		{"ConcurrentClaimsAgree", testConcurrentClaim},
		{"ForgetDestroysTheKeyAndTheIndexEntries", testForget},
		{"ForgetWithoutAKeyStillForbidsOne", testForgetWithoutKey},
		{"ForgetTwiceAndManyAtOnce", testForgetMany},
		{"AForgottenLookupCanBeClaimedAgain", testReclaim},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

func mustKey(t *testing.T, ks domain.KeyStore, id string, want []byte) {
	t.Helper()
	got, err := ks.Key(ctxFor(t), id)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Key(%s) = %x, %v; want %x", id, got, err, want)
	}
}

func mustLookup(t *testing.T, ks domain.KeyStore, lookup []byte, want string) {
	t.Helper()
	got, err := ks.Lookup(ctxFor(t), lookup)
	if err != nil || got != want {
		t.Fatalf("Lookup(%x) = %q, %v; want %q", lookup, got, err, want)
	}
}

func testUnknown(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	_, err := ks.Key(ctx, uuid.NewString())
	wantErr(t, "Key of an unknown account", err, domain.ErrNotFound)
	_, err = ks.Lookup(ctx, random(t, 32))
	wantErr(t, "Lookup of an unknown entry", err, domain.ErrNotFound)
}

func testCreateKeepsFirst(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	id, first, second := uuid.NewString(), random(t, 60), random(t, 60)
	got, err := ks.CreateKey(ctx, id, first)
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("CreateKey = %x, %v; want %x", got, err, first)
	}
	got, err = ks.CreateKey(ctx, id, second)
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("second CreateKey = %x, %v; want the first key %x", got, err, first)
	}
	mustKey(t, ks, id, first)
	// The caller's slice is not the store's: changing it changes nothing.
	first[0] ^= 0xff
	got, err = ks.Key(ctx, id)
	if err != nil || bytes.Equal(got, first) {
		t.Fatalf("the store kept the caller's slice: %x, %v", got, err)
	}
}

func testConcurrentCreate(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	id := uuid.NewString()
	const n = 8
	got := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = ks.CreateKey(ctx, id, random(t, 60)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("creator %d got %x, %v; creator 0 got %x", i, got[i], errs[i], got[0])
		}
	}
	mustKey(t, ks, id, got[0])
}

func testClaim(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	lookup, a, b := random(t, 32), uuid.NewString(), uuid.NewString()
	if got, err := ks.Claim(ctx, lookup, a); err != nil || got != a {
		t.Fatalf("Claim = %q, %v; want %q", got, err, a)
	}
	if got, err := ks.Claim(ctx, lookup, b); err != nil || got != a {
		t.Fatalf("second Claim = %q, %v; want the first account %q", got, err, a)
	}
	mustLookup(t, ks, lookup, a)
	// One account may have several entries (an email normalised by an
	// older rule as well).
	other := random(t, 32)
	if got, err := ks.Claim(ctx, other, a); err != nil || got != a {
		t.Fatalf("Claim of a second entry = %q, %v", got, err)
	}
	mustLookup(t, ks, other, a)
}

func testConcurrentClaim(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	lookup := random(t, 32)
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], errs[i] = ks.Claim(ctx, lookup, uuid.NewString()) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("claimer %d got %q, %v; claimer 0 got %q", i, got[i], errs[i], got[0])
		}
	}
	mustLookup(t, ks, lookup, got[0])
}

func testForget(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	gone, kept := uuid.NewString(), uuid.NewString()
	goneKey, keptKey := random(t, 60), random(t, 60)
	l1, l2, l3 := random(t, 32), random(t, 32), random(t, 32)
	for _, c := range []struct {
		id     string
		key    []byte
		lookup []byte
	}{{gone, goneKey, l1}, {gone, goneKey, l2}, {kept, keptKey, l3}} {
		if _, err := ks.CreateKey(ctx, c.id, c.key); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Claim(ctx, c.lookup, c.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := ks.Forget(ctx, gone); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	_, err := ks.Key(ctx, gone)
	wantErr(t, "Key after Forget", err, domain.ErrAccountForgotten)
	_, err = ks.CreateKey(ctx, gone, random(t, 60))
	wantErr(t, "CreateKey after Forget", err, domain.ErrAccountForgotten)
	for _, l := range [][]byte{l1, l2} {
		_, err = ks.Lookup(ctx, l)
		wantErr(t, "Lookup of a forgotten account's entry", err, domain.ErrNotFound)
	}
	// Nobody else is touched.
	mustKey(t, ks, kept, keptKey)
	mustLookup(t, ks, l3, kept)
}

func testForgetWithoutKey(t *testing.T, ks domain.KeyStore) {
	// An account registered before data keys, forgotten before its start
	// migration created one: no key may be created for it afterwards.
	ctx := ctxFor(t)
	id := uuid.NewString()
	if err := ks.Forget(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err := ks.Key(ctx, id)
	wantErr(t, "Key", err, domain.ErrAccountForgotten)
	_, err = ks.CreateKey(ctx, id, random(t, 60))
	wantErr(t, "CreateKey", err, domain.ErrAccountForgotten)
}

func testForgetMany(t *testing.T, ks domain.KeyStore) {
	ctx := ctxFor(t)
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = uuid.NewString()
		if _, err := ks.CreateKey(ctx, ids[i], random(t, 60)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ks.Forget(ctx, ids[:3]...); err != nil {
		t.Fatal(err)
	}
	if err := ks.Forget(ctx, ids[:3]...); err != nil {
		t.Fatalf("forgetting again: %v", err)
	}
	if err := ks.Forget(ctx); err != nil {
		t.Fatalf("forgetting nobody: %v", err)
	}
	for i, id := range ids {
		_, err := ks.Key(ctx, id)
		if want := i < 3; want != errors.Is(err, domain.ErrAccountForgotten) {
			t.Fatalf("account %d: Key error %v", i, err)
		}
		if i >= 3 && err != nil {
			t.Fatal(fmt.Errorf("account %d: %w", i, err))
		}
	}
}

func testReclaim(t *testing.T, ks domain.KeyStore) {
	// Registering the email of a forgotten account again opens a new one.
	ctx := ctxFor(t)
	lookup, old, fresh := random(t, 32), uuid.NewString(), uuid.NewString()
	if _, err := ks.Claim(ctx, lookup, old); err != nil {
		t.Fatal(err)
	}
	if err := ks.Forget(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got, err := ks.Claim(ctx, lookup, fresh); err != nil || got != fresh {
		t.Fatalf("Claim after Forget = %q, %v; want the new account %q", got, err, fresh)
	}
	mustLookup(t, ks, lookup, fresh)
}
