package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// The use cases of personal data: finding an account by its email,
// forgetting an account, and bringing accounts registered before emails
// were sealed to the sealed form.

// loadAccount is the account's state from the event store, registered or
// not.
func (s *Service) loadAccount(ctx context.Context, id string) (domain.Account, error) {
	cur, err := s.Accounts.Load(ctx, id)
	return cur.State, err
}

// newAccountID is the id a registration of email takes: the one the login
// index already points the email at (a registration that did not complete,
// or one under way: the account stream lets one registration win), or a
// new random one it now points at. An account registered under the id once
// derived from the email and not migrated yet keeps its email taken.
func (s *Service) newAccountID(ctx context.Context, email string) (string, error) {
	old, err := s.loadAccount(ctx, LegacyAccountID(email))
	if err != nil {
		return "", err
	}
	if old.Registered && !old.Forgotten && old.Email.Plain == email {
		return "", domain.ErrEmailTaken
	}
	return s.Personal.Claim(ctx, email, uuid.NewString())
}

// loginAccount is the account an email given at login names, or
// domain.ErrNotFound. An address the rule refuses as not plain may still
// name an account registered under the older rule (see domain.LegacyEmail).
func (s *Service) loginAccount(ctx context.Context, raw string) (string, error) {
	email, err := domain.NormalizeEmail(raw)
	if err != nil {
		var de *domain.Error
		legacy, ok := domain.LegacyEmail(raw)
		if !ok || !errors.As(err, &de) || de.Fields["email"] != domain.EmailProblemNotPlain {
			return "", domain.ErrNotFound
		}
		email = legacy
	}
	return s.Personal.Resolve(ctx, email, s.loadAccount)
}

// EmailOf is the email to show for an account: domain.ForgottenEmail once
// it is forgotten.
func (s *Service) EmailOf(ctx context.Context, accountID string, e domain.StoredEmail, forgotten bool) (string, error) {
	return s.Personal.Email(ctx, accountID, e, forgotten)
}

// Forgotten is what forgetting an account did.
type Forgotten struct {
	AccountID string
	// Forfeited is the balance the owner gave up.
	Forfeited domain.Money
	Written
}

// Forget forgets the caller's own account: refused while it has a live
// server, an abuse hold, or money left unless forfeitBalance.
func (s *Service) Forget(ctx context.Context, accountID string, forfeitBalance bool, meta eventstore.Metadata) (Forgotten, error) {
	return s.forget(ctx, accountID, domain.Forget{Actor: "account:" + accountID, ForfeitBalance: forfeitBalance}, meta)
}

// AdminForget forgets the account named by email or id, for an operator
// (an erasure request). Forgetting an account again finishes what a failed
// first attempt left (its key destroyed), and changes nothing else.
func (s *Service) AdminForget(ctx context.Context, who string, forfeitBalance bool, meta eventstore.Metadata) (Forgotten, error) {
	id, err := s.resolve(ctx, who)
	if err != nil {
		return Forgotten{}, err
	}
	return s.forget(ctx, id, domain.Forget{Actor: "operator", Operator: true, ForfeitBalance: forfeitBalance}, meta)
}

// forget records the decision, then destroys the data key and the index
// entries: the key goes only once the account is forgotten for good (in
// that order a crash can leave a forgotten account's key behind, which the
// next start destroys, but never a live account without its key).
func (s *Service) forget(ctx context.Context, id string, cmd domain.Forget, meta eventstore.Metadata) (Forgotten, error) {
	out := Forgotten{AccountID: id, Forfeited: domain.Zero()}
	d, err := s.Accounts.Run(ctx, id, cmd, meta)
	again := cmd.Operator && errors.Is(err, domain.ErrAccountForgotten)
	if err != nil && !again {
		return Forgotten{}, err
	}
	if !again {
		out.Written = Written{d.Position}
		for _, e := range d.Events {
			if f, ok := e.(domain.AccountForgotten); ok {
				out.Forfeited = f.Forfeited
			}
		}
	}
	if err := s.Personal.Forget(ctx, id); err != nil {
		return Forgotten{}, fmt.Errorf("account %s is forgotten, but its data key is not destroyed yet "+
			"(the next start destroys it, or forget it again): %w", id, err)
	}
	if err := s.Credentials.Erase(ctx, id); err != nil {
		return Forgotten{}, fmt.Errorf("account %s is forgotten, but its credentials are not erased yet "+
			"(the next start erases them, or forget it again): %w", id, err)
	}
	return out, s.WaitFor(ctx, out.Position)
}

// ReconcilePersonalData brings the key store in line with the log, at
// start: an account registered before emails were sealed gets its data
// key, its login index entry and an AccountEmailSealed (from then on no
// read model holds its address in plain: only its old AccountRegistered
// does, which cannot be rewritten); a forgotten account whose key is still
// there (a crash between recording and destroying) loses it. Running it
// again, or in several processes at once, changes nothing more.
func (s *Service) ReconcilePersonalData(ctx context.Context, read projections.Reader) error {
	recs, err := read.PersonalData(ctx)
	if err != nil {
		return fmt.Errorf("list the accounts to reconcile with the key store: %w", err)
	}
	var forgotten []string
	sealed := 0
	meta := eventstore.Metadata{Actor: "system"}
	for _, r := range recs {
		if r.Forgotten {
			forgotten = append(forgotten, r.AccountID)
			continue
		}
		err := s.sealLegacy(ctx, r, meta)
		if errors.Is(err, domain.ErrAccountForgotten) {
			forgotten = append(forgotten, r.AccountID) // forgotten meanwhile
			continue
		}
		if err != nil {
			return err
		}
		sealed++
	}
	if err := s.Personal.Forget(ctx, forgotten...); err != nil {
		return fmt.Errorf("destroy the keys of %d forgotten account(s): %w", len(forgotten), err)
	}
	for _, id := range forgotten {
		if err := s.Credentials.Erase(ctx, id); err != nil {
			return fmt.Errorf("erase the credentials of forgotten account %s: %w", id, err)
		}
	}
	if sealed > 0 {
		s.Log.Info("sealed the emails of accounts registered before emails were sealed", "accounts", sealed)
	}
	return nil
}

// sealLegacy indexes an old account under its email (as the current rule
// normalises it, and as it was stored, when they differ), creates its key
// and records its email sealed.
func (s *Service) sealLegacy(ctx context.Context, r projections.PersonalRecord, meta eventstore.Metadata) error {
	emails := []string{r.Plain}
	if norm, err := domain.NormalizeEmail(r.Plain); err == nil && norm != r.Plain {
		emails = append([]string{norm}, r.Plain)
	}
	for _, e := range emails {
		if _, err := s.Personal.Claim(ctx, e, r.AccountID); err != nil {
			return fmt.Errorf("index account %s: %w", r.AccountID, err)
		}
	}
	sealed, err := s.Personal.SealEmail(ctx, r.AccountID, r.Plain)
	if err != nil {
		return err
	}
	if _, err := s.Accounts.Run(ctx, r.AccountID, domain.SealEmail{Sealed: sealed}, meta); err != nil {
		return fmt.Errorf("seal the email of account %s: %w", r.AccountID, err)
	}
	return nil
}
