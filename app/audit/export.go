package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// ExportColumns is the ledger export's column order, which accounting
// tools rely on: columns are only ever added at the end.
//
//	position             global position of the LedgerPosted event ("123"; "commit/prepare" on KurrentDB)
//	recorded_at          when the store recorded the event (RFC 3339, UTC)
//	at                   the transaction's date: for a charge the start of the hour it covers
//	tx_id                transaction id (deterministic: a charge's comes from its server and hour)
//	kind                 signup_credit, topup, charge or refund
//	account              ledger account of this posting: customer:<id>, promo:signup, crypto:deposits, revenue:compute
//	amount               signed exact decimal moved into the account (at least two decimals)
//	customer_account_id  the customer account whose stream holds the transaction
//	server_id            for charges and refunds
//	hour_from, hour_to   the hour [from, to) a charge covers
//	topup_id             for top-ups
//	invoice_id           for top-ups paid through an invoice (BTCPay's id)
//	event_id             id of the LedgerPosted event
var ExportColumns = []string{"position", "recorded_at", "at", "tx_id", "kind", "account", "amount",
	"customer_account_id", "server_id", "hour_from", "hour_to", "topup_id", "invoice_id", "event_id"}

// ExportOptions select what ExportLedger writes.
type ExportOptions struct {
	// From (inclusive) and To (exclusive) bound the transactions' date
	// (the at column); zero means unbounded.
	From, To time.Time
	// AccountID, if set, keeps only that customer's transactions (all
	// their postings, so each transaction still balances).
	AccountID string
	// Format is "csv" (with a header row) or "jsonl" (one object per row,
	// keys in column order).
	Format string
}

type exportRow struct {
	Position          string `json:"position"`
	RecordedAt        string `json:"recorded_at"`
	At                string `json:"at"`
	TxID              string `json:"tx_id"`
	Kind              string `json:"kind"`
	Account           string `json:"account"`
	Amount            string `json:"amount"`
	CustomerAccountID string `json:"customer_account_id"`
	ServerID          string `json:"server_id"`
	HourFrom          string `json:"hour_from"`
	HourTo            string `json:"hour_to"`
	TopupID           string `json:"topup_id"`
	InvoiceID         string `json:"invoice_id"`
	EventID           string `json:"event_id"`
}

func (r *exportRow) fields() []string {
	return []string{r.Position, r.RecordedAt, r.At, r.TxID, r.Kind, r.Account, r.Amount,
		r.CustomerAccountID, r.ServerID, r.HourFrom, r.HourTo, r.TopupID, r.InvoiceID, r.EventID}
}

func exportTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ExportLedger streams one row per posting of every ledger transaction in
// the log (up to its head when the export starts), in log order, and
// returns how many rows it wrote. An undecodable ledger event stops it:
// an export that silently skipped one would not add up.
func ExportLedger(ctx context.Context, store eventstore.Store, w io.Writer, o ExportOptions) (int64, error) {
	var write func(*exportRow) error
	var flush func() error
	bw := bufio.NewWriterSize(w, 64<<10)
	switch o.Format {
	case "csv", "":
		cw := csv.NewWriter(bw)
		if err := cw.Write(ExportColumns); err != nil {
			return 0, err
		}
		write = func(r *exportRow) error { return cw.Write(r.fields()) }
		flush = func() error {
			cw.Flush()
			return errors.Join(cw.Error(), bw.Flush())
		}
	case "jsonl":
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(r *exportRow) error { return enc.Encode(r) }
		flush = bw.Flush
	default:
		return 0, fmt.Errorf("export format %q: csv or jsonl", o.Format)
	}
	head, err := store.Head(ctx)
	if err != nil {
		return 0, fmt.Errorf("export: read the head of the log: %w", err)
	}
	onlyStream := ""
	if o.AccountID != "" {
		onlyStream = domain.AccountStream(o.AccountID)
	}
	var rows int64
	err = ReadLog(ctx, store, eventstore.Position{}, head, 1024, func(batch []eventstore.Event) error {
		for _, ev := range batch {
			if ev.Type != "LedgerPosted" || (onlyStream != "" && ev.Stream != onlyStream) {
				continue
			}
			prefix, customer := domain.StreamID(ev.Stream)
			if prefix != domain.AccountStreamPrefix {
				continue
			}
			e, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				return fmt.Errorf("export: event %s at %s: %w", ev.ID, ev.Position, err)
			}
			tx, ok := e.(domain.LedgerPosted)
			if !ok {
				return fmt.Errorf("export: event %s at %s: a LedgerPosted decoded as %T", ev.ID, ev.Position, e)
			}
			if (!o.From.IsZero() && tx.At.Before(o.From)) || (!o.To.IsZero() && !tx.At.Before(o.To)) {
				continue
			}
			row := exportRow{Position: ev.Position.String(), RecordedAt: exportTime(ev.RecordedAt), At: exportTime(tx.At),
				TxID: tx.TxID, Kind: string(tx.Kind), CustomerAccountID: customer, ServerID: tx.ServerID,
				TopupID: tx.TopupID, InvoiceID: tx.InvoiceID, EventID: ev.ID.String()}
			if tx.From != nil {
				row.HourFrom = exportTime(*tx.From)
			}
			if tx.To != nil {
				row.HourTo = exportTime(*tx.To)
			}
			for _, p := range tx.Postings {
				row.Account, row.Amount = p.Account, show(p.Amount)
				if err := write(&row); err != nil {
					return err
				}
				rows++
			}
		}
		return nil
	})
	// What was written before an error is flushed too: the rows are
	// complete, and the error says where the export stopped.
	return rows, errors.Join(err, flush())
}
