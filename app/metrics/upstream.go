package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// Provider wraps a cloud provider so that every call is counted by outcome
// and timed, labelled upstream (the mode's name for it: sandbox, vultr).
// The adapters stay unaware of metrics.
func (m *Metrics) Provider(p domain.Provider, upstream string) domain.Provider {
	return &provider{Provider: p, calls: m.caller(upstream)}
}

// Payments wraps a payment processor the same way. Methods the port gains
// later pass through uncounted until they are added here.
func (m *Metrics) Payments(p domain.Payments, upstream string) domain.Payments {
	w := &payments{Payments: p, calls: m.caller(upstream)}
	// The sandbox's processor also settles on demand: keep that visible
	// through the decorator, or /sandbox/topups/:id/pay would vanish.
	if s, ok := p.(settler); ok {
		return &settlingPayments{payments: w, settler: s}
	}
	return w
}

type settler interface {
	Settle(ctx context.Context, ref string) (domain.Invoice, error)
}

type settlingPayments struct {
	*payments
	settler settler
}

func (p *settlingPayments) Settle(ctx context.Context, ref string) (domain.Invoice, error) {
	return timed(p.calls, "Settle", func() (domain.Invoice, error) { return p.settler.Settle(ctx, ref) })
}

// caller times and counts the calls to one upstream.
type caller struct {
	m        *Metrics
	upstream string
}

func (m *Metrics) caller(upstream string) caller { return caller{m: m, upstream: upstream} }

func (c caller) done(call string, start time.Time, err error) {
	c.m.upstreamCalls.WithLabelValues(c.upstream, call, upstreamOutcome(err)).Inc()
	c.m.upstreamDuration.WithLabelValues(c.upstream, call).Observe(time.Since(start).Seconds())
}

// upstreamOutcome tells the failures an operator reacts to differently: a
// refusal is the upstream's answer (sold out, quota), unauthorized needs new
// credentials, error is an outage or an unknown outcome.
func upstreamOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, domain.ErrRefused), errors.Is(err, domain.ErrMethodNotOffered):
		return "refused"
	case errors.Is(err, domain.ErrNoInstance), errors.Is(err, domain.ErrInvoiceNotFound):
		return "not_found"
	case errors.Is(err, domain.ErrUnauthorized), errors.Is(err, domain.ErrPaymentsCredentials):
		return "unauthorized"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

// timed runs one call of an upstream and records it.
func timed[T any](c caller, call string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	c.done(call, start, err)
	return v, err
}

// timedErr is timed for calls that return only an error.
func timedErr(c caller, call string, f func() error) error {
	_, err := timed(c, call, func() (struct{}, error) { return struct{}{}, f() })
	return err
}

type provider struct {
	domain.Provider
	calls caller
}

func (p *provider) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	return timed(p.calls, "CreateInstance", func() (domain.Instance, error) { return p.Provider.CreateInstance(ctx, spec) })
}

func (p *provider) FindInstance(ctx context.Context, tag string) (domain.Instance, error) {
	return timed(p.calls, "FindInstance", func() (domain.Instance, error) { return p.Provider.FindInstance(ctx, tag) })
}

func (p *provider) Instance(ctx context.Context, id string) (domain.Instance, error) {
	return timed(p.calls, "Instance", func() (domain.Instance, error) { return p.Provider.Instance(ctx, id) })
}

func (p *provider) DeleteInstance(ctx context.Context, id string) error {
	return timedErr(p.calls, "DeleteInstance", func() error { return p.Provider.DeleteInstance(ctx, id) })
}

func (p *provider) HaltInstance(ctx context.Context, id string) error {
	return timedErr(p.calls, "HaltInstance", func() error { return p.Provider.HaltInstance(ctx, id) })
}

func (p *provider) StartInstance(ctx context.Context, id string) error {
	return timedErr(p.calls, "StartInstance", func() error { return p.Provider.StartInstance(ctx, id) })
}

func (p *provider) CreateSnapshot(ctx context.Context, instanceID, tag string) (domain.Snapshot, error) {
	return timed(p.calls, "CreateSnapshot", func() (domain.Snapshot, error) { return p.Provider.CreateSnapshot(ctx, instanceID, tag) })
}

func (p *provider) FindSnapshot(ctx context.Context, tag string) (domain.Snapshot, error) {
	return timed(p.calls, "FindSnapshot", func() (domain.Snapshot, error) { return p.Provider.FindSnapshot(ctx, tag) })
}

func (p *provider) DeleteSnapshot(ctx context.Context, id string) error {
	return timedErr(p.calls, "DeleteSnapshot", func() error { return p.Provider.DeleteSnapshot(ctx, id) })
}

func (p *provider) AvailablePlans(ctx context.Context, region string) ([]string, error) {
	return timed(p.calls, "AvailablePlans", func() ([]string, error) { return p.Provider.AvailablePlans(ctx, region) })
}

func (p *provider) Check(ctx context.Context) error {
	return timedErr(p.calls, "Check", func() error { return p.Provider.Check(ctx) })
}

type payments struct {
	domain.Payments
	calls caller
}

func (p *payments) Check(ctx context.Context) error {
	return timedErr(p.calls, "Check", func() error { return p.Payments.Check(ctx) })
}

func (p *payments) OpenInvoice(ctx context.Context, req domain.InvoiceRequest) (domain.Invoice, error) {
	return timed(p.calls, "OpenInvoice", func() (domain.Invoice, error) { return p.Payments.OpenInvoice(ctx, req) })
}

func (p *payments) Invoice(ctx context.Context, ref string) (domain.Invoice, error) {
	return timed(p.calls, "Invoice", func() (domain.Invoice, error) { return p.Payments.Invoice(ctx, ref) })
}

func (p *payments) FindInvoice(ctx context.Context, topupID string) (domain.Invoice, error) {
	return timed(p.calls, "FindInvoice", func() (domain.Invoice, error) { return p.Payments.FindInvoice(ctx, topupID) })
}
