package api

import (
	"context"
	"strings"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/projections"
)

// Wire shapes: the JSON the guide promises. Money is always a string.

type userJSON struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	Balance     string `json:"balance"`
	ServerLimit int    `json:"serverLimit"`
	Suspended   bool   `json:"suspended"`
	CreatedAt   string `json:"createdAt"`
}

type serverJSON struct {
	ID          string   `json:"id"`
	Label       string   `json:"label"`
	Status      string   `json:"status"`
	Region      string   `json:"region"`
	Plan        string   `json:"plan"`
	IPv4        *string  `json:"ipv4"`
	HourlyPrice string   `json:"hourlyPrice"`
	CreatedAt   string   `json:"createdAt"`
	SSHKeys     []string `json:"sshKeys,omitempty"`
	BackupID    string   `json:"backupId,omitempty"`
	// Error says why a deploy ended in ERROR; null otherwise.
	Error *string `json:"error"`
	// SSHUser and SSHPort say how to get in: ssh -p SSHPort SSHUser@IPv4.
	SSHUser string `json:"sshUser"`
	SSHPort int    `json:"sshPort"`
	// HostKeyFingerprints are the server's SSH host key fingerprints, to
	// check on the first connection: while it runs, when the provider tells
	// them (made up in the sandbox; null with Vultr, which does not).
	HostKeyFingerprints []string `json:"hostKeyFingerprints"`
}

// serverDetailJSON is one server as GET /servers/:id shows it: with the
// root password the cloud set, the one time it is shown.
type serverDetailJSON struct {
	serverJSON
	RootPassword *string `json:"rootPassword"`
}

type topupJSON struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	Amount     string  `json:"amount"`
	Currency   string  `json:"currency"`
	PayAddress string  `json:"payAddress"`
	CreatedAt  string  `json:"createdAt"`
	PaidAt     *string `json:"paidAt"`
	// The invoice, for top-ups paid through one: every way to pay it.
	InvoiceID      string              `json:"invoiceId,omitempty"`
	CheckoutLink   string              `json:"checkoutLink,omitempty"`
	ExpiresAt      *string             `json:"expiresAt,omitempty"`
	PaymentMethods []paymentMethodJSON `json:"paymentMethods,omitempty"`
}

type paymentMethodJSON struct {
	ID          string  `json:"id"`
	Network     string  `json:"network"`
	Currency    string  `json:"currency"`
	Destination string  `json:"destination"`
	PaymentLink *string `json:"paymentLink"`
	Amount      string  `json:"amount"`
	Rate        string  `json:"rate"`
	ExpiresAt   *string `json:"expiresAt"`
}

// network names a payment method's network for people: Lightning or the
// asset's own chain.
func network(id string) string {
	if strings.HasSuffix(id, "-LN") || strings.HasSuffix(id, "-LNURL") {
		return "lightning"
	}
	return "onchain"
}

type backupJSON struct {
	ID        string `json:"id"`
	ServerID  string `json:"serverId"`
	Label     string `json:"label"`
	Status    string `json:"status"`
	Region    string `json:"region"`
	Plan      string `json:"plan"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt"`
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// money renders an amount of dollars the one way customers see money
// (domain.Money.Canonical): "10.00", never "10.000" after a refund of
// 0.014; "9.986" stays; a spend of 0.160 is "0.16".
func money(m domain.Money) string { return m.Canonical() }

// userOf shows an account with its email, opened by the caller (the read
// model holds it sealed).
func userOf(a projections.AccountView, email string) userJSON {
	return userJSON{ID: a.ID, Email: email, Balance: money(a.Balance), ServerLimit: a.ServerLimit,
		Suspended: a.Suspended, CreatedAt: stamp(a.CreatedAt)}
}

// user is the account as the API shows it, its email opened with the
// account's data key.
func (s *Server) user(ctx context.Context, a projections.AccountView) (userJSON, error) {
	email, err := s.app.EmailOf(ctx, a.ID, a.Email, a.Forgotten)
	if err != nil {
		return userJSON{}, err
	}
	return userOf(a, email), nil
}

func serverOf(v projections.ServerView) serverJSON {
	out := serverJSON{ID: v.ID, Label: v.Label, Status: string(v.Status), Region: v.Region, Plan: v.Plan,
		HourlyPrice: money(v.HourlyPrice), CreatedAt: stamp(v.CreatedAt), SSHKeys: v.SSHKeys, BackupID: v.BackupID,
		SSHUser: "root", SSHPort: 22, HostKeyFingerprints: v.HostKeyFingerprints}
	if v.IPv4 != "" {
		ip := v.IPv4
		out.IPv4 = &ip
	}
	if v.Error != "" {
		e := v.Error
		out.Error = &e
	}
	return out
}

// acceptedServer is a server as it was when its deploy was accepted: what an
// idempotent replay answers, exactly like the first answer.
func acceptedServer(s domain.Server) serverJSON {
	v := projections.ServerView{ID: s.ID, Label: s.Label, Status: domain.StatusProvisioning, Region: s.Region,
		Plan: s.Plan, HourlyPrice: s.HourlyPrice, CreatedAt: s.CreatedAt, BackupID: s.BackupID}
	for _, k := range s.SSHKeys {
		v.SSHKeys = append(v.SSHKeys, k.Fingerprint)
	}
	return serverOf(v)
}

func topupOf(t projections.TopupView) topupJSON {
	out := topupJSON{ID: t.ID, Status: t.Status, Amount: money(t.Amount), Currency: t.Currency,
		PayAddress: t.PayAddress, CreatedAt: stamp(t.CreatedAt)}
	if !t.PaidAt.IsZero() {
		p := stamp(t.PaidAt)
		out.PaidAt = &p
	}
	if t.InvoiceRef == "" {
		return out
	}
	out.InvoiceID, out.CheckoutLink = t.InvoiceRef, t.CheckoutLink
	var expires *string
	if !t.ExpiresAt.IsZero() {
		e := stamp(t.ExpiresAt)
		expires = &e
	}
	out.ExpiresAt = expires
	out.PaymentMethods = make([]paymentMethodJSON, 0, len(t.Methods))
	for _, m := range t.Methods {
		pm := paymentMethodJSON{ID: m.ID, Network: network(m.ID), Currency: m.Currency, Destination: m.Destination,
			Amount: m.Amount, Rate: m.Rate.String(), ExpiresAt: expires}
		if m.PaymentLink != "" {
			link := m.PaymentLink
			pm.PaymentLink = &link
		}
		out.PaymentMethods = append(out.PaymentMethods, pm)
	}
	return out
}

// reviewTopupJSON is a top-up as an operator reviews it.
type reviewTopupJSON struct {
	topupJSON
	AccountID  string `json:"accountId"`
	Review     string `json:"review"`
	ReviewOpen bool   `json:"reviewOpen"`
}

func reviewTopupOf(t projections.TopupView) reviewTopupJSON {
	return reviewTopupJSON{topupJSON: topupOf(t), AccountID: t.AccountID, Review: t.Review, ReviewOpen: t.ReviewOpen}
}

func backupOf(b projections.BackupView) backupJSON {
	return backupJSON{ID: b.ID, ServerID: b.ServerID, Label: b.Label, Status: string(b.Status), Region: b.Region,
		Plan: b.Plan, CreatedAt: stamp(b.CreatedAt), ExpiresAt: stamp(b.ExpiresAt)}
}

type billingJSON struct {
	Balance     string `json:"balance"`
	HourlySpend string `json:"hourlySpend"`
	// HoursLeft is how many whole hours the balance covers at the current
	// spend; SuspendsAt when the first server would be suspended. Both null
	// when nothing is billed.
	HoursLeft  *int64  `json:"hoursLeft"`
	SuspendsAt *string `json:"suspendsAt"`
}

func billingOf(b projections.BillingView) billingJSON {
	out := billingJSON{Balance: money(b.Balance), HourlySpend: money(b.HourlySpend)}
	if hours, at, ok := domain.Runway(b.Balance, b.Billed); ok {
		when := stamp(at)
		out.HoursLeft, out.SuspendsAt = &hours, &when
	}
	return out
}
