-- Billing and collections: invoices with their ledger, payments, the prepaid wallet, payment
-- instruments, the dunning policy, overrides and the steps sent, and the outbox through which
-- every notice and webhook leaves. Days are INTEGER days since 1970-01-01 (UTC); instants are
-- INTEGER microseconds; money is INTEGER minor units of the row's currency.

-- Invoices. open_minor = total - paid - credited - written off (+ reopened by chargebacks),
-- kept in step with invoice_entries in the same unit of work. settled_at is when open_minor last
-- reached 0 (NULL while open), so an aging "as of" a past day skips what was settled before it.
-- next_check_day: when the dunning ladder next has something to do for it (NULL: nothing).
CREATE TABLE invoices (
    id                     BLOB PRIMARY KEY,
    tenant_id              BLOB NOT NULL REFERENCES tenants(id),
    customer_id            BLOB NOT NULL REFERENCES customers(id),
    number                 TEXT NOT NULL,
    issue_day              INTEGER NOT NULL,
    due_day                INTEGER NOT NULL,
    currency               TEXT NOT NULL,
    total_minor            INTEGER NOT NULL,
    lines_json             TEXT NOT NULL,
    subscription_ids_json  TEXT NOT NULL,
    open_minor             INTEGER NOT NULL,
    settled_at             INTEGER,
    disputed               INTEGER NOT NULL DEFAULT 0,
    dispute_reason         TEXT,
    next_check_day         INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    UNIQUE (tenant_id, number)
);
CREATE INDEX invoices_customer ON invoices(tenant_id, customer_id, due_day);
CREATE INDEX invoices_dunning ON invoices(tenant_id, next_check_day) WHERE next_check_day IS NOT NULL;

-- Every change to an invoice's open amount: payment allocations and credit notes and
-- write-offs (negative), chargebacks and refunds of allocations (positive).
CREATE TABLE invoice_entries (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    invoice_id   BLOB NOT NULL REFERENCES invoices(id),
    customer_id  BLOB NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('payment', 'wallet', 'credit_note', 'write_off', 'chargeback')),
    source_id    BLOB,
    amount_minor INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    reason       TEXT
);
CREATE INDEX invoice_entries_invoice ON invoice_entries(invoice_id, at);
CREATE INDEX invoice_entries_source ON invoice_entries(tenant_id, source_id);

CREATE TABLE payments (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    customer_id  BLOB NOT NULL REFERENCES customers(id),
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    reference    TEXT,
    invoice_id   BLOB,
    status       TEXT NOT NULL CHECK (status IN ('received', 'charged_back')),
    created_at   INTEGER NOT NULL
);
CREATE INDEX payments_customer ON payments(tenant_id, customer_id, received_at);

-- The prepaid balance per customer and currency is the sum of these immutable entries.
CREATE TABLE wallet_entries (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    customer_id  BLOB NOT NULL REFERENCES customers(id),
    currency     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('top_up', 'overpayment', 'credit_note', 'invoice_draw', 'refund', 'chargeback')),
    source_id    BLOB,
    amount_minor INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    note         TEXT
);
CREATE INDEX wallet_entries_customer ON wallet_entries(tenant_id, customer_id, currency);

CREATE TABLE payment_instruments (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    customer_id BLOB NOT NULL REFERENCES customers(id),
    kind        TEXT NOT NULL,
    bin         TEXT,
    last4       TEXT,
    country     TEXT,
    funding     TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX payment_instruments_customer ON payment_instruments(tenant_id, customer_id);

CREATE TABLE dunning_policies (
    tenant_id    BLOB PRIMARY KEY REFERENCES tenants(id),
    policy_json  TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE dunning_overrides (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    customer_id      BLOB NOT NULL REFERENCES customers(id),
    policy_json      TEXT,
    enforcement_off  INTEGER NOT NULL DEFAULT 0,
    excluded         INTEGER NOT NULL DEFAULT 0,
    hold_until_day   INTEGER,
    hold_reason      TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- Each (invoice, step) is sent once: the key of the ladder's idempotency.
CREATE TABLE dunning_steps (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    invoice_id   BLOB NOT NULL REFERENCES invoices(id),
    step         TEXT NOT NULL,
    customer_id  BLOB NOT NULL,
    sent_day     INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, step)
);
CREATE INDEX dunning_steps_customer ON dunning_steps(tenant_id, customer_id, sent_day);

-- Subscriptions whose state dunning changed, so paying up undoes exactly those (and never a
-- suspension an analyst made for fraud).
CREATE TABLE dunning_levers (
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    subscription_id  BLOB NOT NULL,
    customer_id      BLOB NOT NULL,
    lever            TEXT NOT NULL,
    status_set       TEXT NOT NULL,
    applied_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, subscription_id)
);
CREATE INDEX dunning_levers_customer ON dunning_levers(tenant_id, customer_id);

ALTER TABLE customers ADD COLUMN purchases_blocked INTEGER NOT NULL DEFAULT 0;

-- Everything that leaves riskdesk (emails, webhooks) is written here in the unit of work that
-- decided it, then delivered by a worker: a crash neither loses nor doubles one. dedupe_key
-- makes a decision taken twice enqueue once.
CREATE TABLE outbox (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    dedupe_key       TEXT NOT NULL,
    customer_id      BLOB,
    destination      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    subject          TEXT,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_customer ON outbox(tenant_id, customer_id, created_at);

CREATE TABLE webhook_endpoints (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id);

-- Subscriptions can wait for a prepayment (`pending_payment`) and carry the price of their
-- first period. SQLite cannot change a CHECK constraint in place: the table is rebuilt
-- (nothing references it).
CREATE TABLE subscriptions_new (
    id                     BLOB PRIMARY KEY,
    tenant_id              BLOB NOT NULL REFERENCES tenants(id),
    customer_id            BLOB NOT NULL REFERENCES customers(id),
    offer                  TEXT NOT NULL,
    external_id            TEXT,
    quantity               INTEGER NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'disabled', 'cancelled', 'pending_payment')),
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    first_period_minor     INTEGER,
    first_period_currency  TEXT,
    UNIQUE (tenant_id, external_id)
);
INSERT INTO subscriptions_new (id, tenant_id, customer_id, offer, external_id, quantity, status, created_at, updated_at)
    SELECT id, tenant_id, customer_id, offer, external_id, quantity, status, created_at, updated_at FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_customer ON subscriptions(tenant_id, customer_id, id);

-- What to do when a customer's exposure goes over its credit limit (absent: alert only).
CREATE TABLE credit_enforcement (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    customer_id  BLOB NOT NULL REFERENCES customers(id),
    action       TEXT NOT NULL CHECK (action IN ('require_prepayment', 'block_new_purchases', 'suspend')),
    mode         TEXT NOT NULL CHECK (mode IN ('auto', 'require_approval')),
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
