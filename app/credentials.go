package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// passwordHash is the account's password hash from the credential store, under
// the ref the log names ("" for none, which no password matches). An
// account an older build registered names no ref: its hash, which that
// build left in the log, is moved to the store here if the start-up import
// has not got to it yet; once the store has it (or erased the account), the
// log's copy is ignored, and after a change the log names another ref.
func (s *Service) passwordHash(ctx context.Context, a domain.Account) (string, error) {
	if !a.Registered {
		return "", nil
	}
	ref := a.CredentialRef
	if ref == "" {
		ref = domain.LegacyRef(a.ID)
		if a.LegacyPasswordHash != "" {
			if _, err := s.Credentials.AddPassword(ctx, a.ID, a.LegacyPasswordHash); err != nil {
				return "", err
			}
		}
	}
	hash, err := s.Credentials.Password(ctx, ref)
	if errors.Is(err, domain.ErrNotFound) {
		return "", nil // erased, or a registration older builds never finished
	}
	return hash, err
}

// forgetPassword removes a hash the log will never name (a refused
// registration or change). Failing leaves a hash nothing names: logged.
func (s *Service) forgetPassword(ref string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Credentials.DeletePassword(ctx, ref); err != nil {
		s.Log.Warn("could not delete a password hash nothing names", "ref", ref, "err", err)
	}
}

// importBatch is how many events one step of the import reads.
const importBatch = 2048

// ImportLegacyPasswords moves the password hashes older builds wrote into the
// log (AccountRegistered's passwordHash) to the credential store, from where
// the last import stopped to the end of the log, and says how many it
// moved. A hash the store already has for the account, or an
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
	moved := 0
	registered, changed := domain.AccountRegistered{}.EventType(), domain.PasswordChanged{}.EventType()
	for {
		batch, err := store.ReadAll(ctx, from, importBatch)
		if err != nil {
			return moved, fmt.Errorf("read the log after %s: %w", from, err)
		}
		if len(batch) == 0 {
			break
		}
		for _, ev := range batch {
			// Only registrations carry a hash, and a change makes it
			// void: nothing else is decoded.
			switch ev.Type {
			case registered:
				e, err := domain.DecodeEvent(ev.Type, ev.Data)
				if err != nil {
					return moved, fmt.Errorf("event %s at %s: %w", ev.ID, ev.Position, err)
				}
				if reg := e.(domain.AccountRegistered); reg.PasswordHash != "" && reg.CredentialRef == "" {
					added, err := creds.AddPassword(ctx, reg.AccountID, reg.PasswordHash)
					if err != nil {
						return moved, err
					}
					if added {
						moved++
					}
				}
			case changed:
				// The old hash is void: however the import and the change
				// interleaved, no copy of it stays.
				_, id := domain.StreamID(ev.Stream)
				if err := creds.DeletePassword(ctx, domain.LegacyRef(id)); err != nil {
					return moved, err
				}
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
	// The new hash is stored under a ref of its own, then the log names it
	// (and so ends every token issued before), then the old one goes: cut
	// anywhere, the log names a hash that is there, and a retry of the same
	// request either succeeds or is told the password changed.
	ref := uuid.NewString()
	if err := s.Credentials.PutPassword(ctx, accountID, ref, newHash); err != nil {
		return Authenticated{}, Written{}, fmt.Errorf("store the new password of %s: %w", accountID, err)
	}
	d, err := s.Accounts.Run(ctx, accountID, domain.ChangePassword{FromVersion: cur.State.TokenVersion, CredentialRef: ref}, meta)
	if err != nil {
		s.forgetPassword(ref)
		return Authenticated{}, Written{}, err
	}
	old := cur.State.CredentialRef
	if old == "" {
		old = domain.LegacyRef(accountID)
	}
	s.forgetPassword(old)
	return Authenticated{AccountID: accountID, TokenVersion: d.State.TokenVersion}, Written{d.Position}, s.WaitFor(ctx, d.Position)
}
