package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// An account's stored SSH keys: installed on every server it deploys unless
// the deploy names keys of its own, so the happy path ends with a server the
// agent can log into.

// MaxStoredKeys bounds an account's stored keys.
const MaxStoredKeys = 20

// StoredKey is an SSH key kept on the account.
type StoredKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Key       SSHKey    `json:"key"`
	CreatedAt time.Time `json:"createdAt"`
}

// SSH key events, on the account's stream.
type (
	// SSHKeyAdded stores a public key on the account.
	SSHKeyAdded struct {
		KeyID string    `json:"keyId"`
		Name  string    `json:"name"`
		Key   SSHKey    `json:"key"`
		At    time.Time `json:"at"`
	}
	// SSHKeyRemoved deletes it (servers that have it keep it).
	SSHKeyRemoved struct {
		KeyID string    `json:"keyId"`
		At    time.Time `json:"at"`
	}
)

func (SSHKeyAdded) EventType() string         { return "SSHKeyAdded" }
func (SSHKeyRemoved) EventType() string       { return "SSHKeyRemoved" }
func (e SSHKeyAdded) OccurredAt() time.Time   { return e.At }
func (e SSHKeyRemoved) OccurredAt() time.Time { return e.At }

// SSH key commands.
type (
	// AddSSHKey stores a parsed key under a name.
	AddSSHKey struct {
		KeyID, Name string
		Key         SSHKey
		Idem        Idem
	}
	// RemoveSSHKey deletes a stored key.
	RemoveSSHKey struct{ KeyID string }
)

func (AddSSHKey) accountCommand()    {}
func (RemoveSSHKey) accountCommand() {}

// CheckKeyName is the rule for a stored key's name: 1 to 64 characters.
func CheckKeyName(name string) error {
	if n := strings.TrimSpace(name); n == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name) {
		return InvalidField("name", "1 to 64 characters")
	}
	return nil
}

func (d *decision) addKey(c AddSSHKey, now time.Time) error {
	if err := d.s.CheckActive(); err != nil {
		return err
	}
	if err := d.keyed(c.Idem); err != nil {
		return err
	}
	if err := CheckKeyName(c.Name); err != nil {
		return err
	}
	if _, used := d.s.Keys[c.KeyID]; used || c.KeyID == "" || c.Key.Fingerprint == "" {
		return fmt.Errorf("%w: key id %q", ErrInvalid, c.KeyID)
	}
	if len(d.s.KeyOrder) >= MaxStoredKeys {
		return InvalidField("publicKey", fmt.Sprintf("at most %d stored keys: delete one first", MaxStoredKeys))
	}
	for _, id := range d.s.KeyOrder {
		if d.s.Keys[id].Key.Fingerprint == c.Key.Fingerprint {
			return stateError("key "+c.Key.Fingerprint, "stored already", "as key "+id)
		}
	}
	d.emit(SSHKeyAdded{KeyID: c.KeyID, Name: c.Name, Key: c.Key, At: now})
	d.claim(c.Idem, IdempotencyKeyUsed{Ref: c.KeyID}, now)
	return nil
}

func (d *decision) removeKey(c RemoveSSHKey, now time.Time) error {
	if err := d.s.CheckActive(); err != nil {
		return err
	}
	if _, ok := d.s.Keys[c.KeyID]; !ok {
		return fmt.Errorf("key %s: %w", c.KeyID, ErrNotFound)
	}
	d.emit(SSHKeyRemoved{KeyID: c.KeyID, At: now})
	return nil
}

func evolveKey(a Account, e Event) Account {
	switch e := e.(type) {
	case SSHKeyAdded:
		a.Keys[e.KeyID] = StoredKey{ID: e.KeyID, Name: e.Name, Key: e.Key, CreatedAt: e.At}
		a.KeyOrder = append(a.KeyOrder, e.KeyID)
	case SSHKeyRemoved:
		delete(a.Keys, e.KeyID)
		a.KeyOrder = slices.DeleteFunc(a.KeyOrder, func(id string) bool { return id == e.KeyID })
	}
	return a
}

// DeployKeys are the keys a deploy installs: those it names (inline keys
// and stored key ids, each a field of its own in the error), or else every
// key stored on the account.
func (a Account) DeployKeys(inline []SSHKey, ids []string) ([]SSHKey, error) {
	keys := slices.Clone(inline)
	fields := map[string]string{}
	for i, id := range ids {
		k, ok := a.Keys[id]
		if !ok {
			fields[fmt.Sprintf("sshKeyIds[%d]", i)] = "no stored key with this id: see GET /ssh-keys"
			continue
		}
		keys = append(keys, k.Key)
	}
	if len(fields) > 0 {
		return nil, Invalid(fields)
	}
	if len(inline) == 0 && len(ids) == 0 {
		for _, id := range a.KeyOrder {
			keys = append(keys, a.Keys[id].Key)
		}
	}
	// One key once, whichever way it was given.
	var out []SSHKey
	for _, k := range keys {
		if !slices.ContainsFunc(out, func(o SSHKey) bool { return o.Fingerprint == k.Fingerprint }) {
			out = append(out, k)
		}
	}
	return out, nil
}
