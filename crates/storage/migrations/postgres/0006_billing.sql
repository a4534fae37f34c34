-- Billing and collections: invoices with their ledger, payments, the prepaid wallet, payment
-- instruments, the dunning policy, overrides and the steps sent, and the outbox through which
-- every notice and webhook leaves. Days are BIGINT days since 1970-01-01 (UTC); instants are
-- BIGINT microseconds; money is BIGINT minor units of the row's currency.

-- Invoices. open_minor = total - paid - credited - written off (+ reopened by chargebacks),
-- kept in step with invoice_entries in the same unit of work. settled_at is when open_minor last
-- reached 0 (NULL while open), so an aging "as of" a past day skips what was settled before it.
-- next_check_day: when the dunning ladder next has something to do for it (NULL: nothing).
CREATE TABLE invoices (
    id                     UUID PRIMARY KEY,
    tenant_id              UUID NOT NULL REFERENCES tenants(id),
    customer_id            UUID NOT NULL REFERENCES customers(id),
    number                 TEXT NOT NULL,
    issue_day              BIGINT NOT NULL,
    due_day                BIGINT NOT NULL,
    currency               TEXT NOT NULL,
    total_minor            BIGINT NOT NULL,
    lines_json             TEXT NOT NULL,
    subscription_ids_json  TEXT NOT NULL,
    open_minor             BIGINT NOT NULL,
    settled_at             BIGINT,
    disputed               BIGINT NOT NULL DEFAULT 0,
    dispute_reason         TEXT,
    next_check_day         BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    UNIQUE (tenant_id, number)
);
CREATE INDEX invoices_customer ON invoices(tenant_id, customer_id, due_day);
CREATE INDEX invoices_dunning ON invoices(tenant_id, next_check_day) WHERE next_check_day IS NOT NULL;

-- Every change to an invoice's open amount: payment allocations and credit notes and
-- write-offs (negative), chargebacks and refunds of allocations (positive).
CREATE TABLE invoice_entries (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    invoice_id   UUID NOT NULL REFERENCES invoices(id),
    customer_id  UUID NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('payment', 'wallet', 'credit_note', 'write_off', 'chargeback')),
    source_id    UUID,
    amount_minor BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    reason       TEXT
);
CREATE INDEX invoice_entries_invoice ON invoice_entries(invoice_id, at);
CREATE INDEX invoice_entries_source ON invoice_entries(tenant_id, source_id);

CREATE TABLE payments (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    customer_id  UUID NOT NULL REFERENCES customers(id),
    amount_minor BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    reference    TEXT,
    invoice_id   UUID,
    status       TEXT NOT NULL CHECK (status IN ('received', 'charged_back')),
    created_at   BIGINT NOT NULL
);
CREATE INDEX payments_customer ON payments(tenant_id, customer_id, received_at);

-- The prepaid balance per customer and currency is the sum of these immutable entries.
CREATE TABLE wallet_entries (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    customer_id  UUID NOT NULL REFERENCES customers(id),
    currency     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('top_up', 'overpayment', 'credit_note', 'invoice_draw', 'refund', 'chargeback')),
    source_id    UUID,
    amount_minor BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    note         TEXT
);
CREATE INDEX wallet_entries_customer ON wallet_entries(tenant_id, customer_id, currency);

CREATE TABLE payment_instruments (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    customer_id UUID NOT NULL REFERENCES customers(id),
    kind        TEXT NOT NULL,
    bin         TEXT,
    last4       TEXT,
    country     TEXT,
    funding     TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX payment_instruments_customer ON payment_instruments(tenant_id, customer_id);

CREATE TABLE dunning_policies (
    tenant_id    UUID PRIMARY KEY REFERENCES tenants(id),
    policy_json  TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE dunning_overrides (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    customer_id      UUID NOT NULL REFERENCES customers(id),
    policy_json      TEXT,
    enforcement_off  BIGINT NOT NULL DEFAULT 0,
    excluded         BIGINT NOT NULL DEFAULT 0,
    hold_until_day   BIGINT,
    hold_reason      TEXT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- Each (invoice, step) is sent once: the key of the ladder's idempotency.
CREATE TABLE dunning_steps (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    invoice_id   UUID NOT NULL REFERENCES invoices(id),
    step         TEXT NOT NULL,
    customer_id  UUID NOT NULL,
    sent_day     BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, step)
);
CREATE INDEX dunning_steps_customer ON dunning_steps(tenant_id, customer_id, sent_day);

-- Subscriptions whose state dunning changed, so paying up undoes exactly those (and never a
-- suspension an analyst made for fraud).
CREATE TABLE dunning_levers (
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    subscription_id  UUID NOT NULL,
    customer_id      UUID NOT NULL,
    lever            TEXT NOT NULL,
    status_set       TEXT NOT NULL,
    applied_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id)
);
CREATE INDEX dunning_levers_customer ON dunning_levers(tenant_id, customer_id);

ALTER TABLE customers ADD COLUMN purchases_blocked BIGINT NOT NULL DEFAULT 0;

-- Everything that leaves riskdesk (emails, webhooks) is written here in the unit of work that
-- decided it, then delivered by a worker: a crash neither loses nor doubles one. dedupe_key
-- makes a decision taken twice enqueue once.
CREATE TABLE outbox (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    dedupe_key       TEXT NOT NULL,
    customer_id      UUID,
    destination      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    subject          TEXT,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_customer ON outbox(tenant_id, customer_id, created_at);

CREATE TABLE webhook_endpoints (
    id          UUID PRIMARY KEY,
    tenant_id   UUID NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id);

-- Subscriptions can wait for a prepayment (`pending_payment`) and carry the price of their
-- first period.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_status_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_status_check
    CHECK (status IN ('active', 'suspended', 'disabled', 'cancelled', 'pending_payment'));
ALTER TABLE subscriptions ADD COLUMN first_period_minor BIGINT;
ALTER TABLE subscriptions ADD COLUMN first_period_currency TEXT;

-- What to do when a customer's exposure goes over its credit limit (absent: alert only).
CREATE TABLE credit_enforcement (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    customer_id  UUID NOT NULL REFERENCES customers(id),
    action       TEXT NOT NULL CHECK (action IN ('require_prepayment', 'block_new_purchases', 'suspend')),
    mode         TEXT NOT NULL CHECK (mode IN ('auto', 'require_approval')),
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
