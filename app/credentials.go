package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// passwordHash is the account's password hash from the credential store ("" for
// none, which no password matches). A hash an older build left in the log is
// moved to the store here if the start-up import has not got to it yet; once
// the store has the account's password (or erased it), the log's copy is
// ignored.
func (s *Service) passwordHash(ctx context.Context, a domain.Account) (string, error) {
	if !a.Registered {
		return "", nil
	}
	hash, err := s.Credentials.Password(ctx, a.ID)
	if err == nil || !errors.Is(err, domain.ErrNotFound) {
		return hash, err
	}
	if a.LegacyPasswordHash == "" {
		return "", nil
	}
	if _, err := s.Credentials.AddPassword(ctx, a.ID, a.LegacyPasswordHash); err != nil {
		return "", err
	}
	hash, err = s.Credentials.Password(ctx, a.ID)
	if errors.Is(err, domain.ErrNotFound) {
		return "", nil // erased
	}
	return hash, err
}

// importBatch is how many events one step of the import reads.
const importBatch = 2048

// ImportLegacyPasswords moves the password hashes older builds wrote into the
// log (AccountRegistered's passwordHash) to the credential store, from where
// the last import stopped up to the head of the log as it is now, and says
// how many it moved. A hash the store already has for the account, or an
// account the store erased, wins: the log's copy is ignored from then on. It
// is safe to run while the API serves (a login moves an account's hash
// itself if it comes first) and in several processes at once.
func ImportLegacyPasswords(ctx context.Context, store eventstore.Store, creds domain.Credentials, log *slog.Logger) (int, error) {
	raw, err := creds.Imported(ctx)
	if err != nil {
		return 0, err
	}
	var from eventstore.Position
	if raw != "" {
		if from, err = eventstore.ParsePosition(raw); err != nil {
			return 0, fmt.Errorf("credential store import position %q: %w", raw, err)
		}
	}
	head, err := store.Head(ctx)
	if err != nil {
		return 0, err
	}
	moved := 0
	for from.Less(head) {
		batch, err := store.ReadAll(ctx, from, importBatch)
		if err != nil {
			return moved, fmt.Errorf("read the log after %s: %w", from, err)
		}
		if len(batch) == 0 {
			break
		}
		for _, ev := range batch {
			// Only registrations can carry a hash: nothing else is decoded.
			if ev.Type != (domain.AccountRegistered{}).EventType() {
				continue
			}
			e, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				return moved, fmt.Errorf("event %s at %s: %w", ev.ID, ev.Position, err)
			}
			reg := e.(domain.AccountRegistered)
			if reg.PasswordHash == "" {
				continue
			}
			added, err := creds.AddPassword(ctx, reg.AccountID, reg.PasswordHash)
			if err != nil {
				return moved, err
			}
			if added {
				moved++
			}
		}
		from = batch[len(batch)-1].Position
		if err := creds.SetImported(ctx, from.String()); err != nil {
			return moved, err
		}
	}
	if moved > 0 {
		log.Info("moved password hashes found in the log to the credential store; the log's copies are ignored from now on",
			"moved", moved, "up_to", from.String())
	}
	return moved, nil
}

// ChangePassword replaces the account's password, given the current one, and
// ends every access token issued before: the answer carries the token
// version new tokens are issued at. The new password follows the password
// rules; every problem of the request is named at once.
func (s *Service) ChangePassword(ctx context.Context, accountID, current, next string, meta eventstore.Metadata) (Authenticated, Written, error) {
	var problems error
	if current == "" {
		problems = domain.InvalidField("currentPassword", "required")
	}
	problems = errors.Join(problems, domain.CheckPassword("newPassword", next))
	if problems != nil {
		return Authenticated{}, Written{}, mergeInvalid(problems)
	}
	if len(current) > 1024 {
		return Authenticated{}, Written{}, domain.ErrWrongPassword
	}
	cur, err := s.Accounts.Load(ctx, accountID)
	if err != nil {
		return Authenticated{}, Written{}, err
	}
	hash, err := s.passwordHash(ctx, cur.State)
	if err != nil {
		return Authenticated{}, Written{}, err
	}
	ok, err := s.Hasher.Verify(ctx, hash, current)
	if err != nil {
		return Authenticated{}, Written{}, err
	}
	if !ok {
		return Authenticated{}, Written{}, domain.ErrWrongPassword
	}
	if next == current {
		return Authenticated{}, Written{}, domain.InvalidField("newPassword", "must differ from the current password")
	}
	newHash, err := s.Hasher.Hash(ctx, next)
	if err != nil {
		return Authenticated{}, Written{}, err
	}
	// The tokens end first, then the hash is replaced: cut in between, the
	// old password still logs in and the same request, retried, succeeds;
	// the other way round a cut would leave the old tokens working with a
	// password nobody was told about.
	d, err := s.Accounts.Run(ctx, accountID, domain.ChangePassword{FromVersion: cur.State.TokenVersion}, meta)
	if err != nil {
		return Authenticated{}, Written{}, err
	}
	if err := s.Credentials.SetPassword(ctx, accountID, newHash); err != nil {
		return Authenticated{}, Written{}, fmt.Errorf("store the new password of %s: %w", accountID, err)
	}
	return Authenticated{AccountID: accountID, TokenVersion: d.State.TokenVersion}, Written{d.Position}, s.WaitFor(ctx, d.Position)
}
