package domain

import "context"

// Invoice is a payment processor's request for a crypto payment.
type Invoice struct {
	Ref        string
	PayAddress string
}

// Payments is the crypto payment processor.
type Payments interface {
	CreateInvoice(ctx context.Context, topupID string, amount Money, currency string) (Invoice, error)
}
