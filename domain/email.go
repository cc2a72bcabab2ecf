package domain

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxEmailLength is the longest address accepted (RFC 5321's path limit
// less the angle brackets).
const MaxEmailLength = 254

// Why an email is refused, as the email field's detail in a 400: fixed
// phrases, so a client can tell them apart.
const (
	EmailProblemInvalid  = "must be a valid email address"
	EmailProblemControl  = "must not contain control, invisible or bidirectional formatting characters"
	EmailProblemNotPlain = "must be a plain ASCII address (after Unicode NFKC normalisation); internationalised addresses are not accepted"
)

// NormalizeEmail is the one rule for an email address, applied wherever one
// comes in (registration, login, operator commands, the log): trimmed of
// surrounding white space; refused if it holds a control character, an
// invisible format character or a bidirectional override/isolate (they make
// two different addresses look the same, or one look like another);
// normalised with Unicode NFKC, so a full-width or ligature form becomes the
// plain letters it stands for; refused if anything is left that is not
// ASCII (addresses that look alike but are different bytes, like a Cyrillic
// "а" for a Latin "a", cannot open two accounts); ASCII letters lower-cased;
// and checked to be one plain address (local@domain.tld, no display name,
// no comments, no quoting). Every refusal is a validation error on the
// field "email" saying which rule it broke.
func NormalizeEmail(email string) (string, error) {
	e := strings.TrimSpace(email)
	if !utf8.ValidString(e) {
		return "", InvalidField("email", EmailProblemInvalid)
	}
	for _, r := range e {
		if hiddenRune(r) {
			return "", InvalidField("email", EmailProblemControl)
		}
	}
	e = norm.NFKC.String(e)
	for i := 0; i < len(e); i++ {
		if e[i] >= utf8.RuneSelf {
			return "", InvalidField("email", EmailProblemNotPlain)
		}
	}
	e = lowerASCII(e)
	if !plainAddress(e) {
		return "", InvalidField("email", EmailProblemInvalid)
	}
	return e, nil
}

// LegacyEmail is how addresses were normalised before NormalizeEmail (trim
// and Unicode lower case): accounts registered then with an address the
// rule now refuses are still found by it at login, and nowhere else.
func LegacyEmail(email string) (string, bool) {
	e := strings.ToLower(strings.TrimSpace(email))
	if !utf8.ValidString(e) || e == "" || len(e) > MaxEmailLength {
		return "", false
	}
	for _, r := range e {
		if hiddenRune(r) {
			return "", false
		}
	}
	return e, true
}

// hiddenRune reports a rune that changes how an address reads without
// being visible in it: controls (Cc), format characters (Cf: zero-width
// joiners and spaces, soft hyphens, byte order marks, every bidirectional
// mark, embedding, override and isolate), line and paragraph separators,
// and non-characters.
func hiddenRune(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) ||
		unicode.Is(unicode.Zp, r) || unicode.Is(unicode.Bidi_Control, r) || unicode.Is(unicode.Noncharacter_Code_Point, r) ||
		r == utf8.RuneError
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// plainAddress checks e (ASCII, lower case) is one bare address with a dot
// in its domain, and nothing a mail header would read as more than that.
func plainAddress(e string) bool {
	if e == "" || len(e) > MaxEmailLength || strings.ContainsAny(e, " \t\"()<>[]\\,;:") {
		return false
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || at == len(e)-1 || !strings.Contains(e[at+1:], ".") || strings.HasSuffix(e, ".") {
		return false
	}
	addr, err := mail.ParseAddress(e)
	return err == nil && addr.Address == e && addr.Name == ""
}
