-- Foundation schema (PostgreSQL). Times are BIGINT microseconds since the Unix epoch (UTC): they
-- sort and compare exactly, unlike TEXT timestamps with variable fractional digits.
CREATE TABLE tenants (
    id          UUID PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'collections', 'auditor')),
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_tenant ON api_tokens(tenant_id);

CREATE TABLE customers (
    id              UUID PRIMARY KEY,
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    external_id     TEXT,
    name            TEXT NOT NULL,
    domain          TEXT NOT NULL,
    country         TEXT NOT NULL,
    email           TEXT NOT NULL,
    phone           TEXT,
    locale          TEXT NOT NULL,
    cloud_instance  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX customers_tenant ON customers(tenant_id, id);

CREATE TABLE subscriptions (
    id           UUID PRIMARY KEY,
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    customer_id  UUID NOT NULL REFERENCES customers(id),
    offer        TEXT NOT NULL,
    external_id  TEXT,
    quantity     BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'disabled', 'cancelled')),
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX subscriptions_customer ON subscriptions(tenant_id, customer_id, id);

-- Append-only, hash-chained per tenant (see riskdesk_domain::audit).
CREATE TABLE audit_log (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
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

-- The last entry of each tenant's chain. Appenders lock this row, so a chain never forks, and
-- verification compares against it, so removing entries from the end is detected.
CREATE TABLE audit_heads (
    tenant_id  UUID PRIMARY KEY REFERENCES tenants(id),
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    key            TEXT NOT NULL,
    request_hash   TEXT NOT NULL,
    status_code    BIGINT,
    response_body  TEXT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
