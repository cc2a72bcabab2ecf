package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// TopupOpened is a top-up as CreateTopup left it.
type TopupOpened struct {
	Topup domain.Topup
	// Replayed is set when an Idempotency-Key matched an earlier top-up.
	Replayed bool
	Written
}

// CreateTopup opens a crypto top-up of amount USD, payable with method (a
// currency code or payment method id; "" for every method the processor
// offers). The intent is recorded first (TopupRequested) and the invoice
// opened under its id, so a retry (same Idempotency-Key), or the reconcile
// loop after a crash, finds the invoice by that id instead of opening a
// second one. The rules are asked before anything is written, so a refused
// top-up leaves no trace.
func (s *Service) CreateTopup(ctx context.Context, accountID string, amount domain.Money, method string, idem Idempotency, meta eventstore.Metadata) (TopupOpened, error) {
	method = domain.PaymentMethodID(method)
	st, err := s.account(ctx, accountID)
	if err != nil {
		return TopupOpened{}, err
	}
	if err := st.CheckTopupRequest(amount, method); err != nil {
		return TopupOpened{}, err
	}
	id := uuid.NewString()
	d, err := s.Accounts.Run(ctx, accountID, domain.RequestTopup{TopupID: id, Amount: amount, Method: method,
		Idem: s.idem(idem)}, meta)
	var replay *domain.ReplayError
	replayed := errors.As(err, &replay)
	if replayed {
		id, err = replay.Ref, nil
	}
	if err != nil {
		return TopupOpened{}, err
	}
	t := d.State.Topups[id]
	if t == nil {
		return TopupOpened{}, fmt.Errorf("top-up %s missing from account state", id)
	}
	if t.Status == domain.TopupStatusOpening {
		// Two retries of one request at once would both find no invoice
		// and open two: in this process, one opens while the other waits
		// and then finds it recorded.
		unlock, err := opening.lock(ctx, id)
		if err != nil {
			return TopupOpened{}, err
		}
		defer unlock()
		if d, err = s.Accounts.Load(ctx, accountID); err != nil {
			return TopupOpened{}, err
		}
		if t = d.State.Topups[id]; t != nil && t.Status == domain.TopupStatusOpening {
			if d, err = s.openInvoice(ctx, accountID, *t, meta); err != nil {
				return TopupOpened{}, err
			}
			t = d.State.Topups[id]
		}
		if t == nil || !t.Visible() {
			return TopupOpened{}, fmt.Errorf("top-up %s could not be opened: %w", id, domain.ErrNotFound)
		}
	}
	return TopupOpened{Topup: *t, Replayed: replayed, Written: Written{d.Position}}, s.WaitFor(ctx, d.Position)
}

// openInvoice asks the processor for the top-up's invoice and records it.
// A method the processor does not offer ends the top-up (it is never
// shown) and is the customer's 400, naming what is offered.
func (s *Service) openInvoice(ctx context.Context, accountID string, t domain.Topup, meta eventstore.Metadata) (Decided[domain.Account], error) {
	inv, err := s.Payments.OpenInvoice(ctx, domain.InvoiceRequest{TopupID: t.ID, AccountID: accountID,
		Amount: t.Amount, Method: t.Method})
	var refused *domain.MethodNotOfferedError
	if errors.As(err, &refused) {
		if _, ferr := s.Accounts.Run(ctx, accountID, domain.FailTopupOpen{TopupID: t.ID, Reason: err.Error()}, meta); ferr != nil {
			s.Log.Warn("could not record a refused top-up", "topup", t.ID, "err", ferr)
		}
		return Decided[domain.Account]{}, domain.InvalidField("currency", fmt.Sprintf("%s is not offered here; offered: %s",
			refused.Requested, strings.Join(refused.Offered, ", ")))
	}
	if err != nil {
		return Decided[domain.Account]{}, fmt.Errorf("top-up %s: open the invoice: %w", t.ID, err)
	}
	return s.Accounts.Run(ctx, accountID, domain.RecordInvoice{TopupID: t.ID, Invoice: inv}, meta)
}

// Settler is a processor whose invoices can be paid on demand: the
// sandbox's. Only with one does POST /sandbox/topups/:id/pay exist.
type Settler interface {
	Settle(ctx context.Context, ref string) (domain.Invoice, error)
}

// PayTopup simulates the payment of a top-up and credits the account
// through the same rules as a real payment (the invoice is settled, then
// applied). Top-ups of the first sandbox, which have no invoice, are paid
// as they always were. A customer on an abuse hold cannot use it.
func (s *Service) PayTopup(ctx context.Context, accountID, topupID string, idem Idempotency, meta eventstore.Metadata) (Created, error) {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return Created{}, err
	}
	if err := st.CheckActive(); err != nil {
		return Created{}, err
	}
	t, ok := st.Topups[topupID]
	if !ok || !t.Visible() {
		return Created{}, fmt.Errorf("top-up %s: %w", topupID, domain.ErrNotFound)
	}
	// A keyed payment claims its key first, naming the top-up; a retry
	// finds it and answers the paid top-up, or pays it (after a crash
	// between the claim and the payment): paying is once anyway, by the
	// top-up's status and the credit's id.
	replay, err := s.replayOf(ctx, accountID, idem)
	if err != nil {
		return Created{}, err
	}
	if replay && t.Status == domain.TopupStatusPaid {
		return Created{ID: topupID, Replayed: true, Written: Written{s.Accounts.Known(accountID)}}, nil
	}
	cmd := domain.Command(domain.PayTopup{TopupID: topupID})
	var settler Settler
	if t.Requested {
		if settler, ok = s.Payments.(Settler); !ok {
			return Created{}, fmt.Errorf("top-up %s: %w: payments are real here", topupID, domain.ErrNotFound)
		}
		switch t.Status {
		case domain.TopupStatusPending, domain.TopupStatusProcessing:
		default:
			return Created{}, domain.Errorf(domain.CodeInvalidState, "top-up %s is %s; only a PENDING or PROCESSING top-up can be paid", t.ID, t.Status)
		}
	}
	if _, replay, err = s.claim(ctx, accountID, idem, topupID, meta); err != nil {
		return Created{}, err
	}
	if settler != nil {
		inv, err := settler.Settle(ctx, t.ProviderRef)
		if err != nil {
			return Created{}, fmt.Errorf("top-up %s: settle the sandbox invoice: %w", topupID, err)
		}
		cmd = domain.ApplyInvoice{TopupID: topupID, Invoice: inv}
	}
	d, err := s.Accounts.Run(ctx, accountID, cmd, meta)
	if err != nil {
		return Created{}, err
	}
	return Created{ID: topupID, Replayed: replay, Written: Written{d.Position}}, s.WaitFor(ctx, d.Position)
}

// Reconcile brings a top-up in line with its invoice as the processor
// reports it now: the invoice of an OPENING top-up is looked up by the
// top-up's id and recorded (or, after openTimeout, the top-up fails to
// open), and an invoiced one has its invoice applied. It never trusts
// anything but the processor's answer, and is idempotent: applying the same
// state twice records nothing. It is the one path of webhooks and the
// reconcile loop.
func Reconcile(ctx context.Context, accounts *Accounts, pay domain.Payments, accountID string, t domain.Topup, now time.Time, meta eventstore.Metadata) error {
	if t.Status == domain.TopupStatusOpening {
		inv, err := pay.FindInvoice(ctx, t.ID)
		if errors.Is(err, domain.ErrInvoiceNotFound) {
			if now.Sub(t.CreatedAt) < OpenTimeout {
				return nil
			}
			_, err = accounts.Run(ctx, accountID, domain.FailTopupOpen{TopupID: t.ID, Reason: "no invoice was opened"}, meta)
			return err
		}
		if err != nil {
			return fmt.Errorf("top-up %s: find its invoice: %w", t.ID, err)
		}
		d, err := accounts.Run(ctx, accountID, domain.RecordInvoice{TopupID: t.ID, Invoice: inv}, meta)
		if err != nil {
			return err
		}
		if nt, ok := d.State.Topups[t.ID]; ok {
			t = *nt
		}
	}
	if !t.Requested || t.ProviderRef == "" || t.Status == domain.TopupStatusFailed {
		return nil
	}
	inv, err := pay.Invoice(ctx, t.ProviderRef)
	if err != nil {
		return fmt.Errorf("top-up %s: read invoice %s: %w", t.ID, t.ProviderRef, err)
	}
	_, err = accounts.Run(ctx, accountID, domain.ApplyInvoice{TopupID: t.ID, Invoice: inv}, meta)
	return err
}

// OpenTimeout is how long a top-up may stay OPENING (its creating request
// still asking the processor) before the reconcile loop, finding no
// invoice for it, ends it.
const OpenTimeout = 10 * time.Minute

// InvoiceChanged handles a processor's notice that an invoice changed (a
// verified webhook): the notice says only which invoice; the invoice is
// read from the processor and its metadata names our top-up and account,
// which must agree with what we recorded. An invoice that is not one of
// ours is ignored (false).
func (s *Service) InvoiceChanged(ctx context.Context, ref string, meta eventstore.Metadata) (bool, error) {
	inv, err := s.Payments.Invoice(ctx, ref)
	if errors.Is(err, domain.ErrInvoiceNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read invoice %s: %w", ref, err)
	}
	if inv.TopupID == "" || inv.AccountID == "" {
		return false, nil
	}
	if _, err := uuid.Parse(inv.AccountID); err != nil {
		return false, nil
	}
	cur, err := s.Accounts.Load(ctx, inv.AccountID)
	if err != nil {
		return false, err
	}
	t, ok := cur.State.Topups[inv.TopupID]
	if !ok || !t.Requested || t.Status == domain.TopupStatusFailed {
		return false, nil
	}
	if t.Status != domain.TopupStatusOpening && t.ProviderRef != inv.Ref {
		s.Log.Warn("invoice names a top-up that has another invoice: ignored", "invoice", inv.Ref,
			"topup", t.ID, "topup_invoice", t.ProviderRef)
		return false, nil
	}
	if t.Status == domain.TopupStatusOpening {
		if _, err := s.Accounts.Run(ctx, inv.AccountID, domain.RecordInvoice{TopupID: t.ID, Invoice: inv}, meta); err != nil {
			return false, err
		}
	}
	d, err := s.Accounts.Run(ctx, inv.AccountID, domain.ApplyInvoice{TopupID: t.ID, Invoice: inv}, meta)
	if err != nil {
		return false, err
	}
	return true, s.WaitFor(ctx, d.Position)
}

// AdminCreditTopup is an operator crediting a top-up that was not
// credited automatically; the operator is the events' actor.
func (s *Service) AdminCreditTopup(ctx context.Context, accountID, topupID string, amount domain.Money, reason string, meta eventstore.Metadata) (domain.Topup, error) {
	d, err := s.Accounts.Run(ctx, accountID, domain.CreditTopup{TopupID: topupID, Amount: amount, Reason: reason, Actor: meta.Actor}, meta)
	if err != nil {
		return domain.Topup{}, err
	}
	return *d.State.Topups[topupID], s.WaitFor(ctx, d.Position)
}

// AdminCloseTopupReview is an operator deciding not to credit a top-up
// flagged for review.
func (s *Service) AdminCloseTopupReview(ctx context.Context, accountID, topupID, reason string, meta eventstore.Metadata) (domain.Topup, error) {
	d, err := s.Accounts.Run(ctx, accountID, domain.CloseTopupReview{TopupID: topupID, Reason: reason, Actor: meta.Actor}, meta)
	if err != nil {
		return domain.Topup{}, err
	}
	return *d.State.Topups[topupID], s.WaitFor(ctx, d.Position)
}

// opening serialises the opening of each top-up's invoice in this process.
var opening = keyedLocks{held: map[string]chan struct{}{}}

type keyedLocks struct {
	mu   sync.Mutex
	held map[string]chan struct{}
}

// lock takes the lock of key, waiting while another holder has it (or
// until ctx ends), and returns its release.
func (k *keyedLocks) lock(ctx context.Context, key string) (func(), error) {
	for {
		k.mu.Lock()
		ch, busy := k.held[key]
		if !busy {
			ch = make(chan struct{})
			k.held[key] = ch
			k.mu.Unlock()
			return func() {
				k.mu.Lock()
				delete(k.held, key)
				k.mu.Unlock()
				close(ch)
			}, nil
		}
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
