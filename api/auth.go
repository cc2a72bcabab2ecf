package api

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/domain"
)

const issuer = "cryptovps"

// tokens issues and checks access tokens: HS256 only, expiry required, time
// from the service clock as the account sees it (so sandbox time expires
// tokens too), and the account's token version, which a password change
// moves on, so that every token issued before it is void.
type tokens struct {
	secret []byte
	ttl    time.Duration
	// now is the service clock as the account sees it: the one place token
	// times are read.
	now func(accountID string) time.Time
}

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
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
}

var (
	errToken        = errors.New("invalid token")
	errTokenExpired = errors.New("token expired")
)

// verify checks a token's signature and claims; the time checks are made
// here, on the clock of the account the token names, not by the parser.
func (t tokens) verify(raw string) (session, error) {
	var c claims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithoutClaimsValidation())
	if err != nil {
		return session{}, errToken
	}
	if c.Issuer != issuer || c.ExpiresAt == nil || c.Version == nil || *c.Version < 0 {
		return session{}, errToken
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return session{}, errToken
	}
	now := t.now(c.Subject)
	if c.NotBefore != nil && now.Before(c.NotBefore.Time) {
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

// requireAccount authenticates the customer's access token, then applies the
// per-account rate limit and, for mutations, the abuse hold.
func (s *Server) requireAccount(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := bearer(c)
		if !ok {
			if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
				return apiError(http.StatusUnauthorized, "unauthorized",
					`the Authorization header must be "Bearer <accessToken>": the word Bearer, a space, then the token`)
			}
			return apiError(http.StatusUnauthorized, "unauthorized", "missing bearer access token: POST /auth/login")
		}
		who, err := s.tokens.verify(raw)
		if errors.Is(err, errTokenExpired) {
			return apiError(http.StatusUnauthorized, "token_expired", "access token expired: POST /auth/login and retry")
		}
		if err != nil {
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token")
		}
		id := who.accountID
		if err := s.limit(c, s.accountLimit, "account:"+id); err != nil {
			return err
		}
		if err := s.awaitReads(c, id); err != nil {
			return err
		}
		// The read model says whether the account exists and which token
		// version is current: no store is read.
		cur, err := s.read.Session(c.Request().Context(), id, who.keyID)
		if errors.Is(err, domain.ErrNotFound) {
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token")
		} else if err != nil {
			return err
		}
		if who.version >= 0 && who.version != cur.TokenVersion {
			return apiError(http.StatusUnauthorized, "unauthorized",
				"access token ended by a password change: POST /auth/login with the new password")
		}
		c.Set(ctxAccount, id)
		return next(c)
	}
}

// requireOperator guards the admin API with the operator token, never a
// customer token.
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := bearer(c)
		if !ok || subtle.ConstantTimeCompare([]byte(raw), []byte(s.cfg.AdminToken)) != 1 {
			return apiError(http.StatusUnauthorized, "unauthorized", "operator token required")
		}
		return next(c)
	}
}
