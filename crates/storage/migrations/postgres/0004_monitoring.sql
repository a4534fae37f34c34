-- Monitoring: ingested usage and activity events, hourly spend per meter category, monthly
-- budgets with the state of each notification mark, and alerts.

-- One row per event. (tenant_id, event_id) is the partner's key: a re-sent event is a
-- duplicate. customer_id is NULL while the event names an external id no customer has yet.
-- No foreign key on customer_id: ingest resolves customers itself, and the check would cost a
-- look-up per row on the hottest write path.
CREATE TABLE events (
    tenant_id             UUID NOT NULL REFERENCES tenants(id),
    event_id              TEXT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('usage', 'activity')),
    customer_id           UUID,
    customer_external_id  TEXT,
    subscription_id       UUID,
    time                  BIGINT NOT NULL,
    received_at           BIGINT NOT NULL,
    meter_category        TEXT,
    meter_name            TEXT,
    region                TEXT,
    resource_id           TEXT,
    quantity              TEXT,
    unit                  TEXT,
    cost_units            BIGINT,
    cost_rem              BIGINT,
    currency              TEXT,
    operation             TEXT,
    actor                 TEXT,
    status                TEXT,
    properties_json       TEXT,
    PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX events_pending ON events(tenant_id, customer_external_id) WHERE customer_id IS NULL;

-- Spend per customer, meter category, hour (µs of the hour's start) and currency: the
-- budget's month-to-date and the anomaly detector's series. Cost = units + rem / 1e12.
CREATE TABLE spend_hourly (
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    customer_id     UUID NOT NULL,
    meter_category  TEXT NOT NULL,
    hour            BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    cost_units      BIGINT NOT NULL,
    cost_rem        BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, hour, meter_category, currency)
);

CREATE TABLE budgets (
    tenant_id         UUID NOT NULL REFERENCES tenants(id),
    customer_id       UUID NOT NULL REFERENCES customers(id),
    monthly_minor     BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    thresholds_json   TEXT NOT NULL,
    absolute_json     TEXT NOT NULL,
    enforcement_json  TEXT,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);

-- The last notified state of each budget mark per month: a mark notifies once when reached
-- and once when no longer reached.
CREATE TABLE budget_marks (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    customer_id  UUID NOT NULL,
    month        TEXT NOT NULL,
    mark         TEXT NOT NULL,
    reached      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, month, mark)
);

CREATE TABLE alerts (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    customer_id    UUID,
    rule           TEXT NOT NULL,
    severity       TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    status         TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'dismissed')),
    title          TEXT NOT NULL,
    evidence_json  TEXT NOT NULL,
    count          BIGINT NOT NULL,
    first_at       BIGINT NOT NULL,
    last_at        BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    note           TEXT
);
CREATE INDEX alerts_tenant ON alerts(tenant_id, id);
CREATE INDEX alerts_fold ON alerts(tenant_id, customer_id, rule, last_at);
