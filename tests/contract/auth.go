package contract

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

func authTests(t *testing.T, h *harness) {
	t.Run("register answers 201 with an access token and the user holding the signup credit", func(t *testing.T) {
		t.Parallel()
		email := h.unique("shape") + "@example.com"
		r := h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": email, "password": "password-123"}).
			want(t, http.StatusCreated)
		tok := r.str("accessToken")
		if strings.Count(tok, ".") != 2 {
			t.Errorf("accessToken is not a JWT: %s", r)
		}
		if _, err := uuid.Parse(r.str("user.id")); err != nil {
			t.Errorf("user.id is not a uuid: %s", r)
		}
		if r.str("user.email") != email || r.str("user.balance") != "10.00" {
			t.Errorf("want user {email %q, balance \"10.00\"}, got %s", email, r)
		}
		me := h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tok).want(t, http.StatusOK)
		if me.str("user.id") != r.str("user.id") || me.str("user.email") != email || me.str("user.balance") != "10.00" {
			t.Errorf("GET /auth/me does not match the registration: %s", me)
		}
	})

	t.Run("register lower-cases the email and a second registration in any case is 409", func(t *testing.T) {
		t.Parallel()
		local := h.unique("MiXeD.Case")
		r := h.do(t, http.MethodPost, "/auth/register",
			map[string]string{"email": local + "@Example.COM", "password": "password-123"}).want(t, http.StatusCreated)
		lower := strings.ToLower(local) + "@example.com"
		if r.str("user.email") != lower {
			t.Errorf("want email %q, got %s", lower, r)
		}
		h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": lower, "password": "another-password"}).
			wantError(t, http.StatusConflict, "email_taken")
		h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": strings.ToUpper(lower), "password": "another-password"}).
			wantError(t, http.StatusConflict, "email_taken")
		// The first password still logs in, with the email in any case.
		h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": strings.ToUpper(lower), "password": "password-123"}).
			want(t, http.StatusOK)
	})

	t.Run("simultaneous registrations of one email open one account: one 201, the rest 409", func(t *testing.T) {
		t.Parallel()
		email := h.unique("race") + "@example.com"
		rs := fanOut(4, func(i int) *response {
			return h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": email, "password": fmt.Sprintf("password-%d", i)})
		})
		counts := statusCounts(rs)
		if counts[http.StatusCreated] != 1 || counts[http.StatusConflict] != 3 {
			t.Fatalf("want one 201 and three 409, got %v", counts)
		}
		for i, r := range rs {
			if r.Status == http.StatusCreated {
				// The winner's password is the account's.
				h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": email, "password": fmt.Sprintf("password-%d", i)}).
					want(t, http.StatusOK)
				u := &user{h: h, email: email, password: fmt.Sprintf("password-%d", i), id: r.str("user.id")}
				u.setToken(t, r)
				u.wantBalance(t, "10.00", "0.00")
			}
		}
	})

	t.Run("register rejects an invalid email with 400 naming email", func(t *testing.T) {
		t.Parallel()
		for _, email := range []string{"", "not-an-email", "a@b", "two@@example.com", "Agent <a@example.com>", "a b@example.com"} {
			h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": email, "password": "password-123"}).
				wantDetail(t, "email")
		}
	})

	t.Run("register rejects a password under 8 characters with 400 naming password", func(t *testing.T) {
		t.Parallel()
		for _, pw := range []string{"", "1234567"} {
			h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": h.unique("short") + "@example.com", "password": pw}).
				wantDetail(t, "password")
		}
	})

	t.Run("register rejects unknown fields with 400 naming them and creates nothing", func(t *testing.T) {
		t.Parallel()
		email := h.unique("mass") + "@example.com"
		r := h.do(t, http.MethodPost, "/auth/register",
			map[string]any{"email": email, "password": "password-123", "balance": "1000000.00", "isAdmin": true})
		r.wantDetail(t, "balance").wantDetail(t, "isAdmin")
		// Nothing was registered: the email is still free.
		h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": email, "password": "password-123"}).
			want(t, http.StatusCreated)
	})

	t.Run("register rejects malformed JSON with 400", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{`{"email":`, `not json`, `["a@example.com"]`, `{"email":"a@example.com","password":"password-123"} trailing`} {
			h.do(t, http.MethodPost, "/auth/register", body).wantError(t, http.StatusBadRequest, "")
		}
		h.do(t, http.MethodPost, "/auth/register", `{"email":42,"password":"password-123"}`).wantDetail(t, "email")
	})

	t.Run("a body over 64 KiB is 413", func(t *testing.T) {
		t.Parallel()
		big := `{"email":"big@example.com","password":"` + strings.Repeat("p", 65*1024) + `"}`
		h.do(t, http.MethodPost, "/auth/register", big).wantError(t, http.StatusRequestEntityTooLarge, "body_too_large")
		// Without a Content-Length (chunked) too.
		h.do(t, http.MethodPost, "/auth/register", io.MultiReader(strings.NewReader(big))).
			wantError(t, http.StatusRequestEntityTooLarge, "body_too_large")
		u := h.register(t)
		u.do(t, http.MethodPost, "/servers", `{"label":"`+strings.Repeat("x", 65*1024)+`","planId":"vc2-1c-1gb","regionId":"ams"}`).
			wantError(t, http.StatusRequestEntityTooLarge, "body_too_large")
		if ids := u.serverIDs(t); len(ids) != 0 {
			t.Errorf("a refused body deployed %v", ids)
		}
	})

	t.Run("login answers 200 with a token that works", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			want(t, http.StatusOK)
		if r.str("user.id") != u.id || r.str("user.email") != u.email || r.str("user.balance") != "10.00" {
			t.Errorf("login user does not match: %s", r)
		}
		h.do(t, http.MethodGet, "/billing", nil, "Authorization", "Bearer "+r.str("accessToken")).want(t, http.StatusOK)
	})

	t.Run("wrong password and unknown email are the same 401", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		wrong := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": "wrong-password"}).
			wantError(t, http.StatusUnauthorized, "invalid_credentials")
		unknown := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": h.unique("nobody") + "@example.com", "password": "wrong-password"}).
			wantError(t, http.StatusUnauthorized, "invalid_credentials")
		if !bytes.Equal(wrong.Raw, unknown.Raw) {
			t.Errorf("the answers differ:\n wrong password: %s\n unknown email:  %s", wrong.Raw, unknown.Raw)
		}
		if wrong.Header.Get("Content-Type") != unknown.Header.Get("Content-Type") {
			t.Errorf("content types differ")
		}
	})
}

// jwtPart is base64url JSON, as in a JWT.
func jwtPart(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenTests(t *testing.T, h *harness) {
	t.Run("a missing, malformed or tampered token is 401", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		other := h.register(t)
		h.do(t, http.MethodGet, "/auth/me", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		for _, header := range []string{"Bearer", "Bearer ", "Bearer not-a-jwt", "Bearer a.b.c", "Basic " + u.token,
			u.token, "Bearer " + u.token + "x"} {
			h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", header).wantError(t, http.StatusUnauthorized, "unauthorized")
		}
		parts := strings.Split(u.token, ".")
		// A flipped bit in the signature.
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 0x01
		tampered := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tampered).wantError(t, http.StatusUnauthorized, "unauthorized")
		// Another account's id in the payload under the original signature.
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		claims["sub"] = other.id
		forged := parts[0] + "." + jwtPart(t, claims) + "." + parts[2]
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+forged).wantError(t, http.StatusUnauthorized, "unauthorized")
		// The untouched token still works.
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+u.token).want(t, http.StatusOK)
	})

	t.Run("algorithm is pinned to HS256: alg none and HS512 with the right secret are 401", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		now := u.now()
		claims := jwt.MapClaims{"iss": "cryptovps", "sub": u.id, "jti": uuid.NewString(), "ver": 0,
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		none := jwtPart(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + jwtPart(t, claims) + "."
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+none).wantError(t, http.StatusUnauthorized, "unauthorized")
		noneUpper := jwtPart(t, map[string]string{"alg": "NONE", "typ": "JWT"}) + "." + jwtPart(t, claims) + "."
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+noneUpper).wantError(t, http.StatusUnauthorized, "unauthorized")

		kid := kidOf(t, u.token)
		sign := func(m jwt.SigningMethod, c jwt.Claims) string {
			tok := jwt.NewWithClaims(m, c)
			tok.Header["kid"] = kid
			s, err := tok.SignedString([]byte(h.cfg.JWTSecret))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+sign(jwt.SigningMethodHS512, claims)).
			wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+sign(jwt.SigningMethodHS384, claims)).
			wantError(t, http.StatusUnauthorized, "unauthorized")
		// The same claims signed HS256 with the same secret are accepted, so
		// the refusals above are the algorithm's alone.
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+sign(jwt.SigningMethodHS256, claims)).
			want(t, http.StatusOK)
		// Expiry is required.
		noExp := jwt.MapClaims{"iss": "cryptovps", "sub": u.id, "iat": now.Unix(), "ver": 0}
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+sign(jwt.SigningMethodHS256, noExp)).
			wantError(t, http.StatusUnauthorized, "unauthorized")
		// A well-signed token for an account that does not exist.
		ghost := jwt.MapClaims{"iss": "cryptovps", "sub": uuid.NewString(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "ver": 0}
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+sign(jwt.SigningMethodHS256, ghost)).
			wantError(t, http.StatusUnauthorized, "unauthorized")
		// Signed with another secret.
		wrongKey := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		wrongKey.Header["kid"] = kid
		wrong, err := wrongKey.SignedString([]byte("not-the-secret"))
		if err != nil {
			t.Fatal(err)
		}
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+wrong).wantError(t, http.StatusUnauthorized, "unauthorized")
	})

	t.Run("a future iat, an unknown crit header or a kid we did not issue is 401, even signed with our secret", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		now := h.clock.Now()
		kid := kidOf(t, u.token)
		sign := func(header map[string]any, iat time.Time) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "cryptovps", "sub": u.id, "ver": 0,
				"iat": iat.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
			for k, v := range header {
				tok.Header[k] = v
			}
			s, err := tok.SignedString([]byte(h.cfg.JWTSecret))
			if err != nil {
				t.Fatal(err)
			}
			return "Bearer " + s
		}
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", sign(map[string]any{"kid": kid}, now)).want(t, http.StatusOK)
		for name, bad := range map[string]string{
			"iat an hour ahead":  sign(map[string]any{"kid": kid}, now.Add(time.Hour)),
			"crit":               sign(map[string]any{"kid": kid, "crit": []string{"x-cvps"}, "x-cvps": true}, now),
			"a kid we never had": sign(map[string]any{"kid": "rotated-away"}, now),
			"no kid":             sign(nil, now),
		} {
			if r := h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", bad); r.Status != http.StatusUnauthorized {
				t.Errorf("%s: %s", name, r)
			}
		}
	})
}

// kidOf is the key id in a token's header.
func kidOf(t testing.TB, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := tok.Header["kid"].(string)
	if kid == "" {
		t.Fatalf("token without a kid: %v", tok.Header)
	}
	return kid
}

// Catalog as the guide prints it.
var (
	planPrices = []struct{ id, monthly, hourly string }{
		{"vc2-1c-1gb", "10.00", "0.014"},
		{"vc2-1c-2gb", "18.00", "0.025"},
		{"vc2-2c-4gb", "34.00", "0.047"},
		{"vc2-4c-8gb", "62.00", "0.085"},
		{"vc2-6c-16gb", "120.00", "0.164"},
	}
	regionIDs = strings.Fields("ams fra par lon mad waw sto ewr ord dfw atl mia sea lax sjc yto mex sao scl nrt icn sgp blr bom del syd mel jnb tlv")
)

func catalogTests(t *testing.T, h *harness) {
	t.Run("GET /plans lists the 5 plans with hourly price = monthly / 730", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/plans", nil).want(t, http.StatusOK)
		if n := len(r.list("plans")); n != len(planPrices) {
			t.Fatalf("want %d plans, got %d: %s", len(planPrices), n, r)
		}
		for i, p := range planPrices {
			pre := "plans." + itoa(i) + "."
			if r.str(pre+"id") != p.id || r.str(pre+"monthlyPrice") != p.monthly || r.str(pre+"hourlyPrice") != p.hourly {
				t.Errorf("plan %d: want %v, got id %q monthly %q hourly %q", i, p, r.str(pre+"id"), r.str(pre+"monthlyPrice"), r.str(pre+"hourlyPrice"))
			}
		}
	})

	t.Run("GET /regions lists the 29 regions", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/regions", nil).want(t, http.StatusOK)
		var got []string
		for i := range r.list("regions") {
			got = append(got, r.str("regions."+itoa(i)+".id"))
		}
		if strings.Join(got, " ") != strings.Join(regionIDs, " ") {
			t.Errorf("want regions %v, got %v", regionIDs, got)
		}
	})

	t.Run("GET /openapi.json serves the OpenAPI 3.1 document", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/openapi.json", nil).want(t, http.StatusOK)
		if v := r.str("openapi"); !strings.HasPrefix(v, "3.1") {
			t.Errorf("openapi version %q, want 3.1.x", v)
		}
	})

	t.Run("GET /docs is a self-contained HTML page", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/docs", nil).want(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("content type %q, want text/html", ct)
		}
		if !bytes.Contains(r.Raw, []byte("/servers/bulk")) {
			t.Errorf("docs do not mention POST /servers/bulk")
		}
	})

	t.Run("the server-limit 403 points to a page that exists and explains the raise", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/docs/custom-requests", nil).want(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("content type %q, want text/html", ct)
		}
		if !bytes.Contains(r.Raw, []byte("POST /limit-requests")) || !bytes.Contains(r.Raw, []byte("DESTROYING")) {
			t.Errorf("the page does not explain what counts and how to ask")
		}
	})

	t.Run("GET /llms.txt is text/plain and documents every endpoint", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/llms.txt", nil).want(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		text := string(r.Raw)
		for _, ep := range []string{
			"POST /auth/register", "POST /auth/login", "GET /auth/me", "GET /billing", "POST /billing/topups",
			"GET /billing/topups", "GET /plans", "GET /regions", "GET /servers", "GET /servers/:id", "POST /servers",
			"POST /servers/bulk", "DELETE /servers/:id", "GET /backups", "POST /backups", "POST /backups/:id/restore",
			"DELETE /backups/:id", "GET /healthz", "/llms.txt", "POST /sandbox/topups/", "POST /sandbox/clock/advance",
			"Idempotency-Key",
		} {
			if !strings.Contains(text, ep) {
				t.Errorf("/llms.txt does not mention %q", ep)
			}
		}
		for _, p := range planPrices {
			if !strings.Contains(text, p.id) {
				t.Errorf("/llms.txt does not list plan %s", p.id)
			}
		}
		for _, id := range regionIDs {
			if !strings.Contains(text, id) {
				t.Errorf("/llms.txt does not list region %s", id)
			}
		}
		if strings.Contains(text, "{{") {
			t.Errorf("/llms.txt has unrendered template text")
		}
	})

	t.Run("GET /healthz is 200 ok", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/healthz", nil).want(t, http.StatusOK)
		if r.str("status") != "ok" {
			t.Errorf("want status ok, got %s", r)
		}
	})

	t.Run("an unknown route is 404 in the error shape", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodGet, "/nope", nil).wantError(t, http.StatusNotFound, "not_found")
	})
}
