package domain_test

import (
	"errors"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
)

func TestNormalizeEmailIsOneRule(t *testing.T) {
	for in, want := range map[string]string{
		"ann@example.com":        "ann@example.com",
		"  Ann@Example.COM \t":   "ann@example.com",
		"a/b@example.com":        "a/b@example.com",
		"A.B+tag@Sub.Example.io": "a.b+tag@sub.example.io",
		// NFKC: full-width letters and the @ become plain ASCII.
		"ＡＮＮ＠ｅｘａｍｐｌｅ．ｃｏｍ": "ann@example.com",
		// NFKC: the "ﬁ" ligature is "fi".
		"ﬁle@example.com": "file@example.com",
	} {
		got, err := domain.NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
		// Normalising is idempotent: the stored form normalises to itself.
		if again, err := domain.NormalizeEmail(got); err != nil || again != got {
			t.Errorf("NormalizeEmail(%q) = %q, %v: not idempotent", got, again, err)
		}
	}
}

func TestNormalizeEmailRefusesWhatIsNotPlain(t *testing.T) {
	for in, problem := range map[string]string{
		"":                             domain.EmailProblemInvalid,
		"ann":                          domain.EmailProblemInvalid,
		"ann@localhost":                domain.EmailProblemInvalid,
		"Ann <ann@example.com>":        domain.EmailProblemInvalid,
		"ann@example.com (comment)":    domain.EmailProblemInvalid,
		`"a b"@example.com`:            domain.EmailProblemInvalid,
		"a@b@example.com":              domain.EmailProblemInvalid,
		"ann@example.com.":             domain.EmailProblemInvalid,
		"\xffann@example.com":          domain.EmailProblemInvalid,
		"ann\x00@example.com":          domain.EmailProblemControl,
		"ann\n@example.com":            domain.EmailProblemControl,
		"ann\u202e@example.com":        domain.EmailProblemControl,  // right-to-left override
		"ann\u2066x\u2069@example.com": domain.EmailProblemControl,  // isolate
		"ann\u200f@example.com":        domain.EmailProblemControl,  // right-to-left mark
		"a\u200bnn@example.com":        domain.EmailProblemControl,  // zero-width space
		"a\u00adnn@example.com":        domain.EmailProblemControl,  // soft hyphen
		"\ufeffann@example.com":        domain.EmailProblemControl,  // byte order mark
		"ann\u2028@example.com":        domain.EmailProblemControl,  // line separator
		"аnn@example.com":              domain.EmailProblemNotPlain, // Cyrillic а
		"ann@exämple.com":              domain.EmailProblemNotPlain,
		"Straße@example.com":           domain.EmailProblemNotPlain,
	} {
		_, err := domain.NormalizeEmail(in)
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeInvalid || de.Fields["email"] != problem {
			t.Errorf("NormalizeEmail(%q): %v (%+v), want a validation error on email: %q", in, err, de, problem)
		}
	}
	long := make([]byte, domain.MaxEmailLength-len("@example.com")+1)
	for i := range long {
		long[i] = 'a'
	}
	if _, err := domain.NormalizeEmail(string(long) + "@example.com"); err == nil {
		t.Error("an address over 254 bytes was accepted")
	}
}

func TestLegacyEmailIsTheOldRule(t *testing.T) {
	if got, ok := domain.LegacyEmail("  Straße@Example.com "); !ok || got != "straße@example.com" {
		t.Errorf("LegacyEmail = %q, %v", got, ok)
	}
	if _, ok := domain.LegacyEmail("ann\u202e@example.com"); ok {
		t.Error("LegacyEmail accepted a bidirectional override")
	}
}

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ann@example.com", " ＡＮＮ＠ｅｘａｍｐｌｅ．ｃｏｍ", "a/b@example.com", "ann\u202e@example.com", "аnn@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := domain.NormalizeEmail(in)
		if err != nil {
			return
		}
		if again, err := domain.NormalizeEmail(got); err != nil || again != got {
			t.Fatalf("NormalizeEmail(%q) = %q, which normalises to %q, %v", in, got, again, err)
		}
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x21 || c > 0x7e || ('A' <= c && c <= 'Z') {
				t.Fatalf("NormalizeEmail(%q) = %q holds byte %#x", in, got, c)
			}
		}
	})
}
