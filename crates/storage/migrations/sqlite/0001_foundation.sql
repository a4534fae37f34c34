-- Foundation schema (SQLite). Times are INTEGER microseconds since the Unix epoch (UTC): they
-- sort and compare exactly, unlike TEXT timestamps with variable fractional digits.
CREATE TABLE tenants (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'collections', 'auditor')),
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_tenant ON api_tokens(tenant_id);

CREATE TABLE customers (
    id              BLOB PRIMARY KEY,
    tenant_id       BLOB NOT NULL REFERENCES tenants(id),
    external_id     TEXT,
    name            TEXT NOT NULL,
    domain          TEXT NOT NULL,
    country         TEXT NOT NULL,
    email           TEXT NOT NULL,
    phone           TEXT,
    locale          TEXT NOT NULL,
    cloud_instance  TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX customers_tenant ON customers(tenant_id, id);

CREATE TABLE subscriptions (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    customer_id  BLOB NOT NULL REFERENCES customers(id),
    offer        TEXT NOT NULL,
    external_id  TEXT,
    quantity     INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'disabled', 'cancelled')),
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX subscriptions_customer ON subscriptions(tenant_id, customer_id, id);

-- Append-only, hash-chained per tenant (see riskdesk_domain::audit).
CREATE TABLE audit_log (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    seq          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_name   TEXT NOT NULL,
    actor_role   TEXT NOT NULL,
    action       TEXT NOT NULL,
    entity_type  TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    before_json  TEXT,
    after_json   TEXT,
    reason       TEXT,
    note         TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_entity ON audit_log(tenant_id, entity_id, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- The last entry of each tenant's chain. Appenders lock this row, so a chain never forks, and
-- verification compares against it, so removing entries from the end is detected.
CREATE TABLE audit_heads (
    tenant_id  BLOB PRIMARY KEY REFERENCES tenants(id),
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    key            TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status_code    INTEGER,
    response_body  TEXT,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
