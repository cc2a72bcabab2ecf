package domain

import (
	_ "embed"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Password rules (NIST SP 800-63B): long enough, not absurdly long, not
// nothing but blanks, and not one of the passwords every attacker tries
// first. No composition rules: they make passwords harder to remember, not to
// guess.
const (
	MinPassword = 8
	MaxPassword = 256
)

//go:embed common-passwords.txt
var commonPasswordsText string

// commonPasswords is the embedded list as a set, built on first use and never
// changed after, so sharing it is safe.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := map[string]struct{}{}
	for line := range strings.Lines(commonPasswordsText) {
		line = strings.TrimRight(line, "\r\n")
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = struct{}{}
		}
	}
	return set
})

func isControl(r rune) bool { return unicode.IsControl(r) }

// CheckPassword applies the password rules to a new password, naming field in
// the error: 8 to 256 characters of UTF-8, not only spaces or control
// characters, not a common password.
func CheckPassword(field, password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return InvalidField(field, "must be UTF-8 text")
	case n < MinPassword || n > MaxPassword:
		return InvalidField(field, "must be 8 to 256 characters")
	case strings.TrimFunc(password, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) == "":
		return InvalidField(field, "must not be only spaces or control characters")
	}
	if _, common := commonPasswords()[strings.ToLower(password)]; common {
		return InvalidField(field, "is one of the most common passwords, which attackers try first: choose another")
	}
	return nil
}
