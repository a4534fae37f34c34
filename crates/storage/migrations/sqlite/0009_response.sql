-- Response: cases (one open case per customer collects what needs a person), their timeline,
-- actions (each also the queue entry of its provider call), links to the provider's ids,
-- provider notices, service requests and inbound provider events. Instants are INTEGER µs.

CREATE TABLE cases (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    customer_id      BLOB,
    signup_id        BLOB,
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'investigating', 'actioned', 'resolved', 'dismissed')),
    title            TEXT NOT NULL,
    assignee         TEXT,
    opened_at        INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    sla_notified_at  INTEGER,
    closed_at        INTEGER,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX cases_queue ON cases(tenant_id, status, due_at);
CREATE INDEX cases_customer_open ON cases(tenant_id, customer_id) WHERE status NOT IN ('resolved', 'dismissed');
CREATE INDEX cases_sla ON cases(due_at) WHERE sla_notified_at IS NULL AND status NOT IN ('resolved', 'dismissed');

-- The case's story: opened, alerts attached, comments, status and assignee changes, actions,
-- notices, service requests, SLA breach. Append-only.
CREATE TABLE case_entries (
    id         BLOB PRIMARY KEY,
    tenant_id  BLOB NOT NULL REFERENCES tenants(id),
    case_id    BLOB NOT NULL REFERENCES cases(id),
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    text       TEXT,
    ref_id     BLOB,
    data_json  TEXT
);
CREATE INDEX case_entries_case ON case_entries(case_id, at);
CREATE INDEX case_entries_ref ON case_entries(tenant_id, ref_id);

-- An action taken (or proposed) from a case. A pending action with provider = 'partner_center'
-- is also the outbox entry of its provider call: written in the unit of work that decided it,
-- called after commit with its fixed provider_request_id (MS-RequestId) on every attempt.
CREATE TABLE actions (
    id                   BLOB PRIMARY KEY,
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    case_id              BLOB REFERENCES cases(id),
    customer_id          BLOB NOT NULL REFERENCES customers(id),
    subscription_id      BLOB,
    kind                 TEXT NOT NULL,
    params_json          TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('awaiting_approval', 'pending', 'done', 'failed', 'rejected')),
    reason               TEXT NOT NULL,
    note                 TEXT,
    proposed_by          TEXT NOT NULL,
    decided_by           TEXT,
    provider             TEXT NOT NULL,
    provider_request_id  TEXT,
    provider_result_json TEXT,
    attempts             INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      INTEGER,
    last_error           TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    done_at              INTEGER
);
CREATE INDEX actions_case ON actions(case_id);
CREATE INDEX actions_queue ON actions(tenant_id, status, created_at);
CREATE INDEX actions_due ON actions(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;

-- The provider's ids for riskdesk's customers and subscriptions.
CREATE TABLE provider_customers (
    customer_id          BLOB PRIMARY KEY REFERENCES customers(id),
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    provider_customer_id TEXT NOT NULL,
    linked_at            INTEGER NOT NULL,
    UNIQUE (tenant_id, provider_customer_id)
);
CREATE TABLE provider_subscriptions (
    subscription_id          BLOB PRIMARY KEY REFERENCES subscriptions(id),
    tenant_id                BLOB NOT NULL REFERENCES tenants(id),
    provider_subscription_id TEXT NOT NULL,
    -- autoRenewEnabled before riskdesk suspended it, restored on reactivation.
    auto_renew_before        INTEGER,
    provider_status          TEXT,
    synced_at                INTEGER,
    linked_at                INTEGER NOT NULL,
    UNIQUE (tenant_id, provider_subscription_id)
);

CREATE TABLE provider_notices (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    customer_id      BLOB,
    case_id          BLOB REFERENCES cases(id),
    message_id       TEXT,
    received_at      INTEGER NOT NULL,
    sender           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    provider_action  TEXT,
    requested_action TEXT,
    deadline_at      INTEGER,
    status           TEXT NOT NULL CHECK (status IN ('received', 'reviewed', 'acted', 'responded')),
    response         TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (tenant_id, message_id)
);

CREATE TABLE service_requests (
    id               BLOB PRIMARY KEY,
    tenant_id        BLOB NOT NULL REFERENCES tenants(id),
    case_id          BLOB NOT NULL REFERENCES cases(id),
    customer_id      BLOB,
    title            TEXT NOT NULL,
    severity         TEXT NOT NULL,
    description      TEXT NOT NULL,
    ticket_id        TEXT,
    status           TEXT NOT NULL,
    notes_json       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    synced_at        INTEGER,
    UNIQUE (tenant_id, ticket_id)
);

-- Inbound provider events, once each (webhooks are retried by the provider).
CREATE TABLE provider_events (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    dedupe_key   TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, dedupe_key)
);
