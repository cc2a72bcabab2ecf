package domain

import (
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// SSHKey is an OpenSSH public key installed for root on a server.
type SSHKey struct {
	Fingerprint string `json:"fingerprint"`
	Key         string `json:"key"`
}

// sshKeyTypes are the key algorithms a server accepts: DSA is long broken and
// the sk-* variants need hardware most agents do not have, but they are valid.
var sshKeyTypes = map[string]bool{
	ssh.KeyAlgoRSA: true, ssh.KeyAlgoED25519: true,
	ssh.KeyAlgoECDSA256: true, ssh.KeyAlgoECDSA384: true, ssh.KeyAlgoECDSA521: true,
	ssh.KeyAlgoSKED25519: true, ssh.KeyAlgoSKECDSA256: true,
}

// ParseSSHKey validates one public key in authorized_keys form
// ("ssh-ed25519 AAAA... comment") and returns it with its SHA256 fingerprint.
func ParseSSHKey(s string) (SSHKey, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "\r\n") || len(s) > 16384 {
		return SSHKey{}, fmt.Errorf("%w: not a single OpenSSH public key line", ErrInvalid)
	}
	pub, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return SSHKey{}, fmt.Errorf("%w: not an OpenSSH public key: %v", ErrInvalid, err)
	}
	if len(opts) > 0 {
		return SSHKey{}, fmt.Errorf("%w: authorized_keys options are not accepted", ErrInvalid)
	}
	if !sshKeyTypes[pub.Type()] {
		return SSHKey{}, fmt.Errorf("%w: key type %s is not accepted", ErrInvalid, pub.Type())
	}
	if rsa, ok := pub.(ssh.CryptoPublicKey); ok && pub.Type() == ssh.KeyAlgoRSA {
		if k, ok := rsa.CryptoPublicKey().(interface{ Size() int }); ok && k.Size()*8 < 2048 {
			return SSHKey{}, fmt.Errorf("%w: RSA keys must have at least 2048 bits", ErrInvalid)
		}
	}
	return SSHKey{Fingerprint: ssh.FingerprintSHA256(pub), Key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))}, nil
}
