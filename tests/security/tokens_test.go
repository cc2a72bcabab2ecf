package security

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// sign is a token with claims and header fields, signed with secret by
// method.
func sign(t *testing.T, method jwt.SigningMethod, secret string, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims are what the server itself puts in a token for sub, issued at
// iat and valid for ttl, at token version 0.
func claims(sub string, iat time.Time, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{"iss": "cryptovps", "sub": sub, "jti": uuid.NewString(), "iat": iat.Unix(),
		"nbf": iat.Add(-time.Minute).Unix(), "exp": iat.Add(ttl).Unix(), "ver": 0}
}

// headerOf is the header of a token the server issued: the key id it names
// is what a forgery must name too to be refused for another reason alone.
func headerOf(t *testing.T, token string) map[string]any {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"kid": tok.Header["kid"]}
}

func b64(v any) string {
	j, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(j)
}

// No token but one the server issued, unaltered and unexpired, acts for an
// account: a token signed with another secret, unsigned (alg none), signed
// with another algorithm, expired, from another issuer, without expiry,
// for an account that does not exist, or another account's token with the
// subject swapped, is a 401, and the account it names is left as it was.
func TestForgedTokensChangeNothing(t *testing.T) {
	t.Parallel()
	s := start(t, false)
	victim, other := s.register(t), s.register(t)
	server := victim.deploy(t)
	before := victim.state(t)
	otherBefore := other.state(t)
	now := time.Now()
	ours := headerOf(t, victim.token)
	with := func(extra map[string]any) map[string]any {
		h := map[string]any{"kid": ours["kid"]}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}

	parts := strings.Split(other.token, ".")
	var payload map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	payload["sub"] = victim.id
	tampered := parts[0] + "." + b64(payload) + "." + parts[2]

	valid := claims(victim.id, now, 15*time.Minute)
	noExp := claims(victim.id, now, 0)
	delete(noExp, "exp")
	otherIssuer := claims(victim.id, now, 15*time.Minute)
	otherIssuer["iss"] = "someone-else"
	none := b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(valid) + "."
	noneSigned := b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(valid) + "." + strings.Split(victim.token, ".")[2]

	for name, tok := range map[string]string{
		"another secret":         sign(t, jwt.SigningMethodHS256, strings.Repeat("f", 64), valid, ours),
		"alg none":               none,
		"alg none, signed":       noneSigned,
		"HS512, right secret":    sign(t, jwt.SigningMethodHS512, jwtSecret, valid, ours),
		"HS384, right secret":    sign(t, jwt.SigningMethodHS384, jwtSecret, valid, ours),
		"another issuer":         sign(t, jwt.SigningMethodHS256, jwtSecret, otherIssuer, ours),
		"no expiry":              sign(t, jwt.SigningMethodHS256, jwtSecret, noExp, ours),
		"unknown account":        sign(t, jwt.SigningMethodHS256, jwtSecret, claims(uuid.NewString(), now, 15*time.Minute), ours),
		"subject swapped":        tampered,
		"a kid we did not issue": sign(t, jwt.SigningMethodHS256, jwtSecret, valid, map[string]any{"kid": "not-one-of-ours"}),
		"no kid":                 sign(t, jwt.SigningMethodHS256, jwtSecret, valid, nil),
		"an unknown crit header": sign(t, jwt.SigningMethodHS256, jwtSecret, valid, with(map[string]any{"crit": []string{"exp"}})),
		"iat in the future":      sign(t, jwt.SigningMethodHS256, jwtSecret, claims(victim.id, now.Add(time.Hour), 15*time.Minute), ours),
		"no token version":       sign(t, jwt.SigningMethodHS256, jwtSecret, func() jwt.MapClaims { c := claims(victim.id, now, 15*time.Minute); delete(c, "ver"); return c }(), ours),
		"another token version":  sign(t, jwt.SigningMethodHS256, jwtSecret, func() jwt.MapClaims { c := claims(victim.id, now, 15*time.Minute); c["ver"] = 1; return c }(), ours),
		"signature cut":          strings.Join(strings.Split(victim.token, ".")[:2], ".") + ".",
		"operator token":         operatorToken,
		"not a token":            "hello",
	} {
		t.Run(name, func(t *testing.T) {
			for _, r := range []struct{ method, path string }{
				{http.MethodGet, "/billing"},
				{http.MethodPost, "/servers"},
				{http.MethodDelete, "/servers/" + server},
				{http.MethodPost, "/billing/topups"},
				{http.MethodPost, "/ssh-keys"},
			} {
				a := s.send(t, withToken(r.method, r.path, tok))
				a.ExpectError(t, http.StatusUnauthorized, "unauthorized")
			}
		})
	}
	// Expired: signed right, by the server's rules, an hour ago.
	expired := sign(t, jwt.SigningMethodHS256, jwtSecret, claims(victim.id, now.Add(-time.Hour), 15*time.Minute), ours)
	s.send(t, withToken(http.MethodPost, "/servers", expired)).ExpectError(t, http.StatusUnauthorized, "token_expired")
	s.send(t, withToken(http.MethodDelete, "/servers/"+server, expired)).ExpectError(t, http.StatusUnauthorized, "token_expired")

	// A customer token is never an operator token.
	s.send(t, withToken(http.MethodGet, "/admin/accounts/"+victim.email, victim.token)).
		ExpectError(t, http.StatusUnauthorized, "unauthorized")

	victim.unchanged(t, before, "forged tokens")
	other.unchanged(t, otherBefore, "forged tokens")
}

// withToken is a request with an Authorization bearer token and, for a
// write, a body the route would accept from its owner.
func withToken(method, path, token string) apiclient.Request {
	var body any
	switch {
	case method == http.MethodPost && path == "/servers":
		body = map[string]any{"label": "x", "planId": "vc2-1c-1gb", "regionId": "ams", "sshKeys": []string{sshKey}}
	case method == http.MethodPost && path == "/billing/topups":
		body = map[string]string{"amount": "10.00", "currency": "BTC"}
	case method == http.MethodPost && path == "/ssh-keys":
		body = map[string]string{"name": "k", "publicKey": sshKey}
	}
	return apiclient.Request{Method: method, Path: path, Token: token, Body: body}
}
