package domain

import "fmt"

// TopupCredits is the audit's check of top-up credits, as a fold over the
// whole log in order (it reads the log alone: the processor is not asked).
// A credit of a top-up paid through an invoice must:
//
//   - name the invoice the top-up recorded (TopupInvoiced), and carry the
//     transaction id derived from it (TopupTxID);
//   - credit the top-up's amount, which is the settled invoice's amount
//     (RecordInvoice refuses an invoice for another amount), unless an
//     operator credited it by hand (TopupPaid with an actor), who may
//     credit what was actually paid;
//   - be the only credit of that invoice, and of that top-up.
//
// Top-ups of the first sandbox (no invoice) are credited once each.
type TopupCredits struct {
	topups   map[string]*topupFacts // by account id + "/" + top-up id
	invoices map[string]string      // invoice ref -> the tx that credited it
}

type topupFacts struct {
	amount     Money
	invoiceRef string
	byOperator bool   // the last TopupPaid named an operator
	creditedBy string // the tx that credited it
}

// NewTopupCredits returns the check before any event.
func NewTopupCredits() *TopupCredits {
	return &TopupCredits{topups: map[string]*topupFacts{}, invoices: map[string]string{}}
}

// Observe folds one event of accountID's stream and says what is wrong
// with it, if anything.
func (c *TopupCredits) Observe(accountID string, e Event) []string {
	key := func(topup string) string { return accountID + "/" + topup }
	facts := func(topup string) *topupFacts {
		f, ok := c.topups[key(topup)]
		if !ok {
			f = &topupFacts{}
			c.topups[key(topup)] = f
		}
		return f
	}
	switch e := e.(type) {
	case TopupCreated:
		facts(e.TopupID).amount = e.Amount
	case TopupRequested:
		facts(e.TopupID).amount = e.Amount
	case TopupInvoiced:
		facts(e.TopupID).invoiceRef = e.InvoiceRef
	case TopupPaid:
		facts(e.TopupID).byOperator = e.Actor != ""
	case LedgerPosted:
		if e.Kind != TxTopup {
			return nil
		}
		return c.credit(accountID, e, facts(e.TopupID))
	}
	return nil
}

func (c *TopupCredits) credit(accountID string, tx LedgerPosted, f *topupFacts) []string {
	var bad []string
	credited := tx.AmountFor(CustomerLedger(accountID))
	if f.creditedBy != "" {
		bad = append(bad, fmt.Sprintf("top-up %s credited twice: tx %s, then tx %s", tx.TopupID, f.creditedBy, tx.TxID))
	}
	f.creditedBy = tx.TxID
	if tx.InvoiceID == "" {
		if f.invoiceRef != "" {
			bad = append(bad, fmt.Sprintf("tx %s credits top-up %s, paid through invoice %s, without naming it", tx.TxID, tx.TopupID, f.invoiceRef))
		}
		if credited.Cmp(f.amount) != 0 {
			bad = append(bad, fmt.Sprintf("tx %s credits %s for top-up %s of %s", tx.TxID, credited, tx.TopupID, f.amount))
		}
		return bad
	}
	if prev, ok := c.invoices[tx.InvoiceID]; ok {
		bad = append(bad, fmt.Sprintf("invoice %s credited twice: tx %s, then tx %s", tx.InvoiceID, prev, tx.TxID))
	} else {
		c.invoices[tx.InvoiceID] = tx.TxID
	}
	if f.invoiceRef != tx.InvoiceID {
		bad = append(bad, fmt.Sprintf("tx %s credits invoice %s, but top-up %s recorded invoice %q", tx.TxID, tx.InvoiceID, tx.TopupID, f.invoiceRef))
	}
	if tx.TxID != TopupTxID(tx.InvoiceID) {
		bad = append(bad, fmt.Sprintf("tx %s credits invoice %s under another id than %s", tx.TxID, tx.InvoiceID, TopupTxID(tx.InvoiceID)))
	}
	if !f.byOperator && credited.Cmp(f.amount) != 0 {
		bad = append(bad, fmt.Sprintf("tx %s credits %s for invoice %s, settled for %s", tx.TxID, credited, tx.InvoiceID, f.amount))
	}
	if credited.Sign() <= 0 {
		bad = append(bad, fmt.Sprintf("tx %s credits %s", tx.TxID, credited))
	}
	return bad
}
