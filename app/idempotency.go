package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Idempotency carries a request's Idempotency-Key and a hash of what it
// asked (method, path and body); the zero value is a request without one.
type Idempotency struct {
	Key         string
	RequestHash string
}

// idem is the key as a command carries it, at the real time of now.
func (s *Service) idem(i Idempotency) domain.Idem {
	if i.Key == "" {
		return domain.Idem{}
	}
	return domain.Idem{Key: i.Key, RequestHash: i.RequestHash, Wall: s.Wall.Now()}
}

// Answered is the first answer to a keyed request when the account keeps
// one for it: what a retry is answered with, byte for byte. nil means the
// request is new, or was made but its answer is not kept (yet): the caller
// runs it, and the command finds the key and answers the same work. The
// same key with another request is ErrIdempotencyMismatch.
func (s *Service) Answered(ctx context.Context, accountID string, idem Idempotency) (*domain.IdemAnswer, error) {
	if idem.Key == "" {
		return nil, nil
	}
	cur, err := s.Accounts.Load(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var replay *domain.ReplayError
	if err := cur.State.CheckIdempotency(s.idem(idem)); !errors.As(err, &replay) {
		return nil, err
	}
	if replay.Answer == nil {
		return nil, nil
	}
	ans := *replay.Answer
	if ans.Sealed {
		if s.Sealer == nil {
			return nil, nil
		}
		body, err := s.Sealer.Open(ans.Body)
		if err != nil {
			// Not this process's key: the work is answered again
			// instead, from what the record names.
			s.Log.Error("cannot open a kept answer: is --secrets-key the same on every process?", "account", accountID, "err", err)
			return nil, nil
		}
		ans.Body, ans.Sealed, ans.Secret = body, false, true
	}
	return &ans, nil
}

// RecordAnswer keeps the first answer to a keyed request, sealed when it
// shows a secret (the log keeps only ciphertext then). A key the account no
// longer remembers, or an answer kept already, records nothing.
func (s *Service) RecordAnswer(ctx context.Context, accountID string, idem Idempotency, ans domain.IdemAnswer, secret bool, meta eventstore.Metadata) error {
	if idem.Key == "" {
		return nil
	}
	if secret {
		if s.Sealer == nil {
			return errors.New("no sealer to keep a secret answer with")
		}
		sealed, err := s.Sealer.Seal(ans.Body)
		if err != nil {
			return fmt.Errorf("seal the answer: %w", err)
		}
		ans.Body, ans.Sealed = sealed, true
	}
	_, err := s.Accounts.Run(ctx, accountID, domain.RecordIdempotentAnswer{Idem: s.idem(idem), Answer: ans}, meta)
	return err
}

// claim claims a key for work done on another stream (or checked against
// the account's state before it is done), naming what the work is about:
// ref, or on a retry the ref the first request named (replayed). The work
// must then be safe to run again under that ref: a retry after a crash
// between the claim and the work runs it.
func (s *Service) claim(ctx context.Context, accountID string, idem Idempotency, ref string, meta eventstore.Metadata) (string, bool, error) {
	if idem.Key == "" {
		return ref, false, nil
	}
	_, err := s.Accounts.Run(ctx, accountID, domain.ClaimIdempotencyKey{Idem: s.idem(idem), Ref: ref}, meta)
	var replay *domain.ReplayError
	if errors.As(err, &replay) {
		return replay.Ref, true, nil
	}
	return ref, false, err
}

// replayOf reports whether a keyed request repeats one the account
// remembers (without writing anything); the same key with another request
// is ErrIdempotencyMismatch.
func (s *Service) replayOf(ctx context.Context, accountID string, idem Idempotency) (bool, error) {
	if idem.Key == "" {
		return false, nil
	}
	cur, err := s.Accounts.Load(ctx, accountID)
	if err != nil {
		return false, err
	}
	var replay *domain.ReplayError
	if err := cur.State.CheckIdempotency(s.idem(idem)); errors.As(err, &replay) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	return false, nil
}
