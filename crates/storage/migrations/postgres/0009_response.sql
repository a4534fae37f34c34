-- Response: cases (one open case per customer collects what needs a person), their timeline,
-- actions (each also the queue entry of its provider call), links to the provider's ids,
-- provider notices, service requests and inbound provider events. Instants are BIGINT µs.

CREATE TABLE cases (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    customer_id      UUID,
    signup_id        UUID,
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'investigating', 'actioned', 'resolved', 'dismissed')),
    title            TEXT NOT NULL,
    assignee         TEXT,
    opened_at        BIGINT NOT NULL,
    due_at           BIGINT NOT NULL,
    sla_notified_at  BIGINT,
    closed_at        BIGINT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX cases_queue ON cases(tenant_id, status, due_at);
CREATE INDEX cases_customer_open ON cases(tenant_id, customer_id) WHERE status NOT IN ('resolved', 'dismissed');
CREATE INDEX cases_sla ON cases(due_at) WHERE sla_notified_at IS NULL AND status NOT IN ('resolved', 'dismissed');

-- The case's story: opened, alerts attached, comments, status and assignee changes, actions,
-- notices, service requests, SLA breach. Append-only.
CREATE TABLE case_entries (
    id         UUID PRIMARY KEY,
    tenant_id  UUID NOT NULL REFERENCES tenants(id),
    case_id    UUID NOT NULL REFERENCES cases(id),
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    text       TEXT,
    ref_id     UUID,
    data_json  TEXT
);
CREATE INDEX case_entries_case ON case_entries(case_id, at);
CREATE INDEX case_entries_ref ON case_entries(tenant_id, ref_id);

-- An action taken (or proposed) from a case. A pending action with provider = 'partner_center'
-- is also the outbox entry of its provider call: written in the unit of work that decided it,
-- called after commit with its fixed provider_request_id (MS-RequestId) on every attempt.
CREATE TABLE actions (
    id                   UUID PRIMARY KEY,
    tenant_id            UUID NOT NULL REFERENCES tenants(id),
    case_id              UUID REFERENCES cases(id),
    customer_id          UUID NOT NULL REFERENCES customers(id),
    subscription_id      UUID,
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
    attempts             BIGINT NOT NULL DEFAULT 0,
    next_attempt_at      BIGINT,
    last_error           TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    done_at              BIGINT
);
CREATE INDEX actions_case ON actions(case_id);
CREATE INDEX actions_queue ON actions(tenant_id, status, created_at);
CREATE INDEX actions_due ON actions(next_attempt_at) WHERE status = 'pending' AND next_attempt_at IS NOT NULL;

-- The provider's ids for riskdesk's customers and subscriptions.
CREATE TABLE provider_customers (
    customer_id          UUID PRIMARY KEY REFERENCES customers(id),
    tenant_id            UUID NOT NULL REFERENCES tenants(id),
    provider_customer_id TEXT NOT NULL,
    linked_at            BIGINT NOT NULL,
    UNIQUE (tenant_id, provider_customer_id)
);
CREATE TABLE provider_subscriptions (
    subscription_id          UUID PRIMARY KEY REFERENCES subscriptions(id),
    tenant_id                UUID NOT NULL REFERENCES tenants(id),
    provider_subscription_id TEXT NOT NULL,
    -- autoRenewEnabled before riskdesk suspended it, restored on reactivation.
    auto_renew_before        BIGINT,
    provider_status          TEXT,
    synced_at                BIGINT,
    linked_at                BIGINT NOT NULL,
    UNIQUE (tenant_id, provider_subscription_id)
);

CREATE TABLE provider_notices (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    customer_id      UUID,
    case_id          UUID REFERENCES cases(id),
    message_id       TEXT,
    received_at      BIGINT NOT NULL,
    sender           TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    provider_action  TEXT,
    requested_action TEXT,
    deadline_at      BIGINT,
    status           TEXT NOT NULL CHECK (status IN ('received', 'reviewed', 'acted', 'responded')),
    response         TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (tenant_id, message_id)
);

CREATE TABLE service_requests (
    id               UUID PRIMARY KEY,
    tenant_id        UUID NOT NULL REFERENCES tenants(id),
    case_id          UUID NOT NULL REFERENCES cases(id),
    customer_id      UUID,
    title            TEXT NOT NULL,
    severity         TEXT NOT NULL,
    description      TEXT NOT NULL,
    ticket_id        TEXT,
    status           TEXT NOT NULL,
    notes_json       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    synced_at        BIGINT,
    UNIQUE (tenant_id, ticket_id)
);

-- Inbound provider events, once each (webhooks are retried by the provider).
CREATE TABLE provider_events (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    dedupe_key   TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    body         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, dedupe_key)
);
