-- Top-ups paid through a payment processor's invoice (BTCPay Server, or the
-- sandbox's simulated one). provider_ref is the invoice id.
-- requested: opened through an invoice (false for the first sandbox's).
ALTER TABLE topups ADD COLUMN requested boolean NOT NULL DEFAULT false;
-- The payment method asked for ('' for any).
ALTER TABLE topups ADD COLUMN method text NOT NULL DEFAULT '';
ALTER TABLE topups ADD COLUMN checkout_link text NOT NULL DEFAULT '';
ALTER TABLE topups ADD COLUMN expires_at timestamptz;
ALTER TABLE topups ADD COLUMN expires_at_ns integer NOT NULL DEFAULT 0;
-- Each way to pay: [{id, currency, destination, paymentLink, amount, rate}].
ALTER TABLE topups ADD COLUMN methods jsonb NOT NULL DEFAULT '[]';
-- Why an operator must look at the top-up, and whether one has.
ALTER TABLE topups ADD COLUMN review text NOT NULL DEFAULT '';
ALTER TABLE topups ADD COLUMN review_closed boolean NOT NULL DEFAULT false;
ALTER TABLE topups ADD COLUMN credited_by text NOT NULL DEFAULT '';
-- What the reconcile loop and the operator's review list look for.
CREATE INDEX topups_open ON topups (status) WHERE status IN ('OPENING', 'PENDING', 'PROCESSING', 'EXPIRED');
CREATE INDEX topups_review ON topups (created_at) WHERE review <> '' AND NOT review_closed;
CREATE INDEX topups_id ON topups (id);
