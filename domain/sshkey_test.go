package domain_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/cryptovps/cryptovps/domain"
)

// authorizedKey returns pub in authorized_keys form, without a newline.
func authorizedKey(t *testing.T, pub any) (string, ssh.PublicKey) {
	t.Helper()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), k
}

func ed25519AuthorizedKey(t *testing.T) (string, ssh.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return authorizedKey(t, pub)
}

func TestParseSSHKeyAcceptsAnEd25519KeyAndReturnsItsSHA256Fingerprint(t *testing.T) {
	t.Parallel()
	line, pub := ed25519AuthorizedKey(t)
	for _, in := range []string{line, line + " ann@laptop", "  " + line + " ann@laptop\n"} {
		key, err := domain.ParseSSHKey(in)
		if err != nil {
			t.Fatalf("ParseSSHKey(%q): %v", in, err)
		}
		if !strings.HasPrefix(key.Fingerprint, "SHA256:") {
			t.Fatalf("fingerprint %q is not SHA256:", key.Fingerprint)
		}
		wantEqual(t, "fingerprint", key.Fingerprint, ssh.FingerprintSHA256(pub))
		wantEqual(t, "key", key.Key, line)
	}
}

func TestParseSSHKeyAcceptsECDSAAndRSAOfAtLeast2048Bits(t *testing.T) {
	t.Parallel()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, pub := range []any{&ec.PublicKey, &r.PublicKey} {
		line, k := authorizedKey(t, pub)
		key, err := domain.ParseSSHKey(line)
		if err != nil {
			t.Fatalf("%s key: %v", k.Type(), err)
		}
		wantEqual(t, "fingerprint", key.Fingerprint, ssh.FingerprintSHA256(k))
	}
}

func TestParseSSHKeyRejectsAnythingButOneAcceptableKey(t *testing.T) {
	t.Parallel()
	line, _ := ed25519AuthorizedKey(t)
	other, _ := ed25519AuthorizedKey(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, _ := authorizedKey(t, &weak.PublicKey)
	for name, in := range map[string]string{
		"empty":                 "",
		"blank":                 " \t ",
		"garbage":               "garbage",
		"bad base64":            "ssh-ed25519 AAAA!!!notbase64 ann@laptop",
		"truncated key":         line[:len(line)-12],
		"type mismatch":         "ssh-rsa " + strings.Fields(line)[1],
		"two lines":             line + "\n" + other,
		"CRLF two lines":        line + "\r\n" + other,
		"carriage return":       line + "\r" + other,
		"command option":        `command="/bin/sh" ` + line,
		"no-pty option":         "no-pty " + line,
		"from option":           `from="10.0.0.0/8" ` + line,
		"1024-bit RSA":          rsa1024,
		"private key header":    "-----BEGIN OPENSSH PRIVATE KEY-----",
		"too long":              line + " " + strings.Repeat("x", 16384),
		"fingerprint not a key": "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
	} {
		key, err := domain.ParseSSHKey(in)
		if err == nil {
			t.Errorf("%s: ParseSSHKey accepted it as %s", name, key.Fingerprint)
			continue
		}
		if !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: error %v is not ErrInvalid", name, err)
		}
	}
}
