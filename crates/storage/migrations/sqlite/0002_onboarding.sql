-- Onboarding: stored assessments (the review queue), velocity counters, identifiers for
-- fraud linking, and each customer's credit terms and admin-access state.
CREATE TABLE signups (
    id            BLOB PRIMARY KEY,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    created_at    INTEGER NOT NULL,
    as_of         INTEGER NOT NULL,
    decision      TEXT NOT NULL CHECK (decision IN ('approve', 'review', 'reject')),
    score         INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('approved', 'pending_review', 'rejected')),
    input_json    TEXT NOT NULL,
    outcome_json  TEXT NOT NULL,
    customer_id   BLOB REFERENCES customers(id),
    reviewed_at   INTEGER,
    review_note   TEXT
);
CREATE INDEX signups_queue ON signups(tenant_id, status, id);
CREATE INDEX signups_decision ON signups(tenant_id, decision, id);

CREATE TABLE signup_velocity (
    tenant_id  BLOB NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    signup_id  BLOB NOT NULL
);
CREATE INDEX signup_velocity_key ON signup_velocity(tenant_id, kind, value, at);

-- Who uses which email, phone, card, device or IP: sign-ups and customers.
CREATE TABLE identifiers (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    owner_type   TEXT NOT NULL CHECK (owner_type IN ('signup', 'customer')),
    owner_id     BLOB NOT NULL,
    PRIMARY KEY (tenant_id, kind, value, owner_type, owner_id)
);
CREATE INDEX identifiers_owner ON identifiers(tenant_id, owner_id);

-- Identifiers of anything marked fraudulent: one probe per identifier at assessment time.
CREATE TABLE fraud_identifiers (
    tenant_id  BLOB NOT NULL REFERENCES tenants(id),
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    source_id  BLOB NOT NULL,
    marked_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind, value)
);

ALTER TABLE customers ADD COLUMN credit_limit_minor INTEGER;
ALTER TABLE customers ADD COLUMN credit_currency TEXT;
ALTER TABLE customers ADD COLUMN prepayment_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN admin_access TEXT NOT NULL DEFAULT 'restricted';
ALTER TABLE customers ADD COLUMN risk_status TEXT NOT NULL DEFAULT 'normal';
ALTER TABLE customers ADD COLUMN signup_id BLOB;
