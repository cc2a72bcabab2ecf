package api

import (
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
// from the service clock (so sandbox time expires tokens too).
type tokens struct {
	secret []byte
	ttl    time.Duration
	clock  domain.Clock
}

func (t tokens) issue(accountID string) (string, error) {
	now := t.clock.Now()
	claims := jwt.RegisteredClaims{
		Issuer: issuer, Subject: accountID, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
}

var errToken = errors.New("invalid token")

func (t tokens) verify(raw string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(), jwt.WithIssuer(issuer), jwt.WithTimeFunc(t.clock.Now))
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return "", jwt.ErrTokenExpired
		}
		return "", errToken
	}
	if _, err := uuid.Parse(claims.Subject); err != nil {
		return "", errToken
	}
	return claims.Subject, nil
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
		id, err := s.tokens.verify(raw)
		if errors.Is(err, jwt.ErrTokenExpired) {
			return apiError(http.StatusUnauthorized, "token_expired", "access token expired: POST /auth/login and retry")
		}
		if err != nil {
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token")
		}
		if err := s.limit(c, s.accountLimit, "account:"+id); err != nil {
			return err
		}
		if err := s.awaitReads(c, id); err != nil {
			return err
		}
		if v, err := s.read.Account(c.Request().Context(), id); errors.Is(err, domain.ErrNotFound) {
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token")
		} else if err != nil {
			return err
		} else if v.Forgotten {
			return apiError(http.StatusUnauthorized, "unauthorized", "invalid access token: this account was forgotten")
		}
		c.Set(ctxAccount, id)
		return next(c)
	}
}
