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

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var fuzzNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func fuzzTokens() tokens {
	return tokens{secret: []byte("0123456789abcdef0123456789abcdef"), ttl: 15 * time.Minute,
		now: func(string) time.Time { return fuzzNow }}
}

// sign makes a token with any header and claims, for the seeds.
func sign(f *testing.F, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	f.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzTokenVerify: verifying any string never panics, and accepts only an
// HS256 token signed with the secret, issued by us, unexpired at the
// service clock's now, for an account id.
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
	registered := func(sub string, exp time.Time) jwt.RegisteredClaims {
		return jwt.RegisteredClaims{Issuer: issuer, Subject: sub, ExpiresAt: jwt.NewNumericDate(exp)}
	}
	f.Add(sign(f, jwt.SigningMethodHS256, tk.secret, registered(uuid.NewString(), fuzzNow.Add(-time.Second))))             // expired
	f.Add(sign(f, jwt.SigningMethodHS256, tk.secret, registered("not-an-id", fuzzNow.Add(time.Hour))))                     // subject
	f.Add(sign(f, jwt.SigningMethodHS256, []byte("another secret"), registered(uuid.NewString(), fuzzNow.Add(time.Hour)))) // key
	f.Add(sign(f, jwt.SigningMethodHS512, tk.secret, registered(uuid.NewString(), fuzzNow.Add(time.Hour))))                // alg
	f.Add(sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, registered(uuid.NewString(), fuzzNow.Add(time.Hour))))
	f.Add(sign(f, jwt.SigningMethodHS256, tk.secret, jwt.RegisteredClaims{Issuer: issuer, Subject: uuid.NewString()})) // no exp
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
			c.Version == nil || *c.Version != who.version {
			t.Fatalf("accepted %q: alg %s, claims %+v", raw, tok.Method.Alg(), c)
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %q: %d parts", raw, len(parts))
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatalf("accepted %q: signature: %v", raw, err)
		}
		if err := jwt.SigningMethodHS256.Verify(parts[0]+"."+parts[1], sig, tk.secret); err != nil {
			t.Fatalf("accepted %q with a bad signature: %v", raw, err)
		}
	})
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
