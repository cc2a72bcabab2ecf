package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/eventstore"
)

// The parsers of outside input the API owns, fuzzed on their own (fast);
// FuzzRequest in handlers_fuzz_test.go drives the whole handler stack.
// Seeds are in testdata/fuzz/<name>/ and in the f.Add calls; `go test`
// runs them as tests, `go test -fuzz '^FuzzX$'` explores.

var fuzzNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

var (
	fuzzSecret   = []byte("0123456789abcdef0123456789abcdef")
	fuzzPrevious = []byte("the secret before the rotation, 32+ bytes")
)

func fuzzTokens() tokens {
	return newTokens(fuzzSecret, [][]byte{fuzzPrevious}, 15*time.Minute, func(string) time.Time { return fuzzNow })
}

// sign makes a token with any header and claims, for the seeds.
func sign(f *testing.F, method jwt.SigningMethod, key any, claims jwt.Claims, header map[string]any) string {
	f.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzTokenVerify: verifying any string never panics, and accepts only an
// HS256 token that names one of our keys (kid) and is signed with it, asks
// for no header extension (crit), issued by us not in the future, unexpired
// at the service clock's now, for an account id, with a token version.
func FuzzTokenVerify(f *testing.F) {
	tk := fuzzTokens()
	good, err := tk.issue(uuid.NewString(), 3)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good + "x")
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("")
	f.Add("...")
	f.Add("a.b.c")
	ver := 0
	mine := func(sub string, iat, exp time.Time) claims {
		c := claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: sub, IssuedAt: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(exp)}, Version: &ver}
		return c
	}
	cur := map[string]any{"kid": keyID(fuzzSecret)}
	prev := map[string]any{"kid": keyID(fuzzPrevious)}
	id, hour := uuid.NewString(), fuzzNow.Add(time.Hour)
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow, hour), cur))                                // ours
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzPrevious, mine(id, fuzzNow, hour), prev))                             // rotated
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzPrevious, mine(id, fuzzNow, hour), cur))                              // kid lies
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow, hour), nil))                                // no kid
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow, hour), map[string]any{"kid": "elsewhere"})) // kid
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow, hour), map[string]any{"kid": keyID(fuzzSecret), "crit": []string{"exp"}}))
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow.Add(2*time.Minute), hour), cur))        // future iat
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow.Add(59*time.Second), hour), cur))       // skew
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine(id, fuzzNow, fuzzNow.Add(-time.Second)), cur))      // expired
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, mine("not-an-id", fuzzNow, hour), cur))                  // subject
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("another secret"), mine(id, fuzzNow, hour), cur))             // key
	f.Add(sign(f, jwt.SigningMethodHS512, fuzzSecret, mine(id, fuzzNow, hour), cur))                           // alg
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, mine(id, fuzzNow, hour), cur))      // none
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, jwt.RegisteredClaims{Issuer: issuer, Subject: id}, cur)) // no exp
	f.Add(sign(f, jwt.SigningMethodHS256, fuzzSecret, jwt.RegisteredClaims{Issuer: issuer, Subject: id, ExpiresAt: jwt.NewNumericDate(hour),
		IssuedAt: jwt.NewNumericDate(fuzzNow)}, cur)) // no version
	f.Fuzz(func(t *testing.T, raw string) {
		who, err := tk.verify(raw)
		if err != nil {
			if who != (session{}) {
				t.Fatalf("refused %q but answered %+v", raw, who)
			}
			return
		}
		if _, err := uuid.Parse(who.accountID); err != nil {
			t.Fatalf("accepted %q for subject %q, not an account id", raw, who.accountID)
		}
		// Accepted: it must really be ours, checked without our parser's
		// options.
		var c claims
		tok, _, err := jwt.NewParser().ParseUnverified(raw, &c)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", raw, err)
		}
		if tok.Method.Alg() != "HS256" || c.Issuer != issuer || c.ExpiresAt == nil || !fuzzNow.Before(c.ExpiresAt.Time) ||
			c.IssuedAt == nil || c.IssuedAt.After(fuzzNow.Add(time.Minute)) || c.Version == nil || *c.Version != who.version {
			t.Fatalf("accepted %q: alg %s, claims %+v", raw, tok.Method.Alg(), c)
		}
		if _, crit := tok.Header["crit"]; crit {
			t.Fatalf("accepted %q, which asks for extensions: %v", raw, tok.Header)
		}
		secret := map[any][]byte{keyID(fuzzSecret): fuzzSecret, keyID(fuzzPrevious): fuzzPrevious}[tok.Header["kid"]]
		if secret == nil {
			t.Fatalf("accepted %q, which names no key of ours: %v", raw, tok.Header)
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q: %d parts", raw, len(parts))
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("accepted %q: signature: %v", raw, err)
		}
		if err := jwt.SigningMethodHS256.Verify(parts[0]+"."+parts[1], sig, secret); err != nil {
			t.Fatalf("accepted %q with a bad signature: %v", raw, err)
		}
	})
}

// TestTokenVerifyRefusesWhatTheIssueSays: the seeds above, one by one, with
// what each must get.
func TestTokenVerifyRefusesWhatTheIssueSays(t *testing.T) {
	tk := fuzzTokens()
	ver := 2
	id := uuid.NewString()
	mk := func(secret []byte, header map[string]any, iat time.Time) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: issuer, Subject: id,
			IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(fuzzNow.Add(time.Hour))}, Version: &ver})
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cur, prev := keyID(fuzzSecret), keyID(fuzzPrevious)
	for name, c := range map[string]struct {
		raw string
		ok  bool
	}{
		"issued by us":                   {mk(fuzzSecret, map[string]any{"kid": cur}, fuzzNow), true},
		"signed before the rotation":     {mk(fuzzPrevious, map[string]any{"kid": prev}, fuzzNow), true},
		"issued 59 s ahead (clock skew)": {mk(fuzzSecret, map[string]any{"kid": cur}, fuzzNow.Add(59*time.Second)), true},
		"issued 2 min in the future":     {mk(fuzzSecret, map[string]any{"kid": cur}, fuzzNow.Add(2*time.Minute)), false},
		"a kid we did not issue":         {mk(fuzzSecret, map[string]any{"kid": "k-elsewhere"}, fuzzNow), false},
		"no kid":                         {mk(fuzzSecret, nil, fuzzNow), false},
		"our kid on another key's token": {mk(fuzzPrevious, map[string]any{"kid": cur}, fuzzNow), false},
		"an unknown crit header":         {mk(fuzzSecret, map[string]any{"kid": cur, "crit": []string{"b64"}, "b64": false}, fuzzNow), false},
		"an empty crit header":           {mk(fuzzSecret, map[string]any{"kid": cur, "crit": []string{}}, fuzzNow), false},
		"a kid of another type":          {mk(fuzzSecret, map[string]any{"kid": 7}, fuzzNow), false},
	} {
		who, err := tk.verify(c.raw)
		if ok := err == nil; ok != c.ok {
			t.Errorf("%s: accepted %v (%v), want %v", name, ok, err, c.ok)
		}
		if c.ok && (who.accountID != id || who.version != ver) {
			t.Errorf("%s: %+v", name, who)
		}
	}
	// A token we issue names the current key.
	raw, err := tk.issue(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := jwt.NewParser().ParseUnverified(raw, &claims{})
	if err != nil || tok.Header["kid"] != cur {
		t.Fatalf("issued token header %v, %v", tok.Header, err)
	}
}

// FuzzDecodeCursor: a ledger cursor from a client never panics, and one it
// accepts is a position the API could have handed out (it encodes back to
// a cursor naming the same position).
func FuzzDecodeCursor(f *testing.F) {
	for _, p := range []eventstore.Position{{Commit: 1, Prepare: 1}, {Commit: 12345, Prepare: 12340}, {Commit: ^uint64(0), Prepare: ^uint64(0)}} {
		f.Add(encodeCursor(p))
	}
	for _, s := range []string{"", "=", "MA", "MC4w", "MS4y", "LTEuMg", "MS4yLjM", "MTg0NDY3NDQwNzM3MDk1NTE2MTYuMQ", "%%%", "MS4x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, ok := decodeCursor(s)
		if !ok {
			if !p.IsZero() {
				t.Fatalf("refused %q but answered %v", s, p)
			}
			return
		}
		if p.IsZero() {
			t.Fatalf("accepted %q as the zero position", s)
		}
		back, ok := decodeCursor(encodeCursor(p))
		if !ok || back != p {
			t.Fatalf("%q is %v, which encodes to %q, which decodes to %v %v", s, p, encodeCursor(p), back, ok)
		}
	})
}

// FuzzIdempotencyKey: any Idempotency-Key header is refused (400) or
// accepted; an accepted key is kept in the log as JSON, so it must come back
// from the log exactly as it was sent (otherwise a retry after a restart
// would not find it and deploy again), and the request hash must not
// depend on anything but the request.
func FuzzIdempotencyKey(f *testing.F) {
	for _, k := range []string{"", "k", "0b7c6f1e-3a0f-4a59-9d1f-3c2b7a4d5e6f", " lead", "trail ", strings.Repeat("x", 255),
		strings.Repeat("x", 256), "\xff", "caf\xc3\xa9", "é", "a\tb", "a\x00b", "\u2028"} {
		f.Add(k, "web-1")
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, key, label string) {
		req := httptest.NewRequest(http.MethodPost, "/servers", nil)
		req.Header["Idempotency-Key"] = []string{key}
		c := e.NewContext(req, httptest.NewRecorder())
		c.SetPath("/servers")
		body := deployRequest{Label: label, PlanID: "vc2-1c-1gb", RegionID: "ams"}
		idem, err := idempotency(c, body)
		if err != nil {
			ae, ok := err.(*Error)
			if !ok || ae.Status != http.StatusBadRequest {
				t.Fatalf("key %q: %v, want a 400", key, err)
			}
			return
		}
		if idem.Key != key {
			t.Fatalf("key %q became %q", key, idem.Key)
		}
		if key == "" {
			return
		}
		b, err := json.Marshal(idem.Key)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil || back != key {
			t.Fatalf("key %q accepted, but it comes back from the log as %q", key, back)
		}
		again, err := idempotency(c, body)
		if err != nil || again != idem {
			t.Fatalf("the same request fingerprints differently: %+v, %+v (%v)", idem, again, err)
		}
	})
}
