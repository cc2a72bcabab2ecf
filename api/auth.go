package api

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

const issuer = "cryptovps"

// tokens issues and checks access tokens: HS256 only, expiry required, time
// from the service clock as the account sees it (so sandbox time expires
// tokens too), and the account's token version, which a password change
// moves on, so that every token issued before it is void. Tokens name the
// secret that signed them (kid), so the secret can be rotated: the current
// one signs, and the previous one (during a rotation) is still accepted.
type tokens struct {
	keys []signingKey // the current first
	ttl  time.Duration
	// now is the service clock as the account sees it: the one place token
	// times are read.
	now func(accountID string) time.Time
}

// signingKey is a secret and the key id tokens signed with it carry.
type signingKey struct {
	id     string
	secret []byte
}

// keyID names a secret without revealing it: a prefix of its SHA-256, the
// same in every process given the same secret.
func keyID(secret []byte) string {
	sum := sha256.Sum256(append([]byte("cryptovps access token key\n"), secret...))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

func newTokens(current []byte, previous [][]byte, ttl time.Duration, now func(string) time.Time) tokens {
	t := tokens{ttl: ttl, now: now, keys: []signingKey{{keyID(current), current}}}
	for _, p := range previous {
		if len(p) > 0 && keyID(p) != t.keys[0].id {
			t.keys = append(t.keys, signingKey{keyID(p), p})
		}
	}
	return t
}

// maxIssuedAhead is how far in the future a token's iat may be: the clocks
// of the processes issuing and checking it may differ a little, not more.
const maxIssuedAhead = time.Minute

// claims are an access token's: the registered ones and the account's token
// version when it was issued.
type claims struct {
	jwt.RegisteredClaims
	Version *int `json:"ver,omitempty"`
}

// session is who a verified token or API key speaks for.
type session struct {
	accountID string
	// version is the token version the token was issued at (API keys: -1,
	// they outlive password changes); keyID the API key, if it is one.
	version int
	keyID   string
	// expires is when the token stops working (zero for an API key).
	expires time.Time
}

func (t tokens) issue(accountID string, version int) (string, error) {
	now := t.now(accountID)
	c := claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Subject: accountID, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
	}, Version: &version}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	tok.Header["kid"] = t.keys[0].id
	return tok.SignedString(t.keys[0].secret)
}

// key is the secret of the key id a token names; a token that names none
// of ours, or asks (crit) for header extensions, is refused before its
// signature is even checked: we understand no extension.
func (t tokens) key(tok *jwt.Token) (any, error) {
	if _, ok := tok.Header["crit"]; ok {
		return nil, errToken
	}
	kid, _ := tok.Header["kid"].(string)
	for _, k := range t.keys {
		if kid == k.id {
			return k.secret, nil
		}
	}
	return nil, errToken
}

var (
	errToken        = errors.New("invalid token")
	errTokenExpired = errors.New("token expired")
)

// verify checks a token's signature and claims; the time checks are made
// here, on the clock of the account the token names, not by the parser.
func (t tokens) verify(raw string) (session, error) {
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, t.key,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation())
	if err != nil {
		return session{}, errToken
	}
	if c.Issuer != issuer || c.ExpiresAt == nil || c.IssuedAt == nil || c.Version == nil || *c.Version < 0 {
		return session{}, errToken
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return session{}, errToken
	}
	now := t.now(c.Subject)
	if c.NotBefore != nil && now.Before(c.NotBefore.Time) || c.IssuedAt.Time.After(now.Add(maxIssuedAhead)) {
		return session{}, errToken
	}
	if !now.Before(c.ExpiresAt.Time) {
		return session{}, errTokenExpired
	}
	return session{accountID: c.Subject, version: *c.Version, expires: c.ExpiresAt.Time}, nil
}

const ctxAccount = "accountID"

func accountOf(c echo.Context) string {
	id, _ := c.Get(ctxAccount).(string)
	return id
}

func bearer(c echo.Context) (string, bool) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// errAPIKey is an API key that authenticates nobody.
var errAPIKey = apiError(http.StatusUnauthorized, "unauthorized", "invalid API key: it was deleted, or never existed")

// authenticate says who a bearer credential speaks for: from what this
// process verified before, or by verifying it now (a token's signature and
// claims; an API key's hash in the credential store).
func (s *Server) authenticate(c echo.Context, raw string) (session, error) {
	if who, ok := s.verified.get(raw); ok {
		if who.keyID == "" && !s.tokens.now(who.accountID).Before(who.expires) {
			s.verified.drop(raw)
			return session{}, errTokenExpired
		}
		return who, nil
	}
	var who session
	if app.LooksLikeAPIKey(raw) {
		acct, key, err := s.app.FindAPIKey(c.Request().Context(), raw)
		if errors.Is(err, domain.ErrNotFound) {
			// Every unknown key costs a store lookup: guessing spends the
			// client address's login budget.
			if err := s.limit(c, s.authLimit, "ip:"+c.RealIP()); err != nil {
				return session{}, err
			}
			return session{}, errAPIKey
		}
		if err != nil {
			return session{}, err
		}
		who = session{accountID: acct, keyID: key, version: -1}
	} else {
		var err error
		if who, err = s.tokens.verify(raw); err != nil {
			return session{}, err
		}
	}
	s.verified.put(raw, who)
	return who, nil
}

// requireAccount authenticates the customer's access token or API key, then
// applies the per-account rate limit and, for mutations, the abuse hold.
func (s *Server) requireAccount(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := bearer(c)
		if !ok {
			if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
				return apiError(http.StatusUnauthorized, "unauthorized",
					`the Authorization header must be "Bearer <accessToken or API key>": the word Bearer, a space, then the token`)
			}
			return apiError(http.StatusUnauthorized, "unauthorized", "missing bearer access token: POST /auth/login")
		}
		who, err := s.authenticate(c, raw)
		switch {
		case errors.Is(err, errTokenExpired):
			return apiError(http.StatusUnauthorized, "token_expired", "access token expired: POST /auth/login and retry")
		case errors.Is(err, errToken):
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token")
		case err != nil:
			return err
		}
		id := who.accountID
		if err := s.limit(c, s.accountLimit, id); err != nil {
			return err
		}
		if err := s.awaitReads(c, id); err != nil {
			return err
		}
		// The read model says whether the account exists (and is not
		// forgotten), which token version is current and whether the key
		// still exists: no store is read.
		ctx := c.Request().Context()
		cur, err := s.read.Session(ctx, id, who.keyID)
		if errors.Is(err, domain.ErrNotFound) {
			s.verified.drop(raw)
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token")
		} else if err != nil {
			return err
		}
		switch {
		case cur.Forgotten:
			s.verified.drop(raw)
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token: this account was forgotten")
		case who.keyID != "" && !cur.KeyLive:
			s.verified.drop(raw)
			s.touched.Delete(who.keyID)
			return errAPIKey
		case who.keyID == "" && who.version != cur.TokenVersion:
			s.verified.drop(raw)
			return apiError(http.StatusUnauthorized, "unauthorized",
				"access token ended by a password change: POST /auth/login with the new password")
		case who.keyID != "":
			s.used(ctx, who)
		}
		c.Set(ctxAccount, id)
		return next(c)
	}
}

// touchEvery is how often an API key's lastUsedAt is written: it says when
// a key was last used to the minute, at one write a minute per key at most.
const touchEvery = time.Minute

// used records an API key's use, at most once every touchEvery per key and
// process.
func (s *Server) used(ctx context.Context, who session) {
	now := s.cfg.Wall()
	if last, ok := s.touched.Load(who.keyID); ok && now.Sub(last.(time.Time)) < touchEvery {
		return
	}
	s.touched.Store(who.keyID, now)
	if err := s.app.TouchAPIKey(ctx, who.accountID, who.keyID, s.tokens.now(who.accountID)); err != nil {
		s.log.Warn("could not record an API key's last use", "key", who.keyID, "err", err)
	}
}
