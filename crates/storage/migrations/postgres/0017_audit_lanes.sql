-- The audit chain in lanes (issue 20): each tenant's chain is split into 32 independent lanes
-- on PostgreSQL, each with its own head row. A transaction appends to the lane of its
-- connection (`pg_backend_pid() % 32`), so concurrent writers of one tenant, in one process
-- or several, no longer queue on a single tenant-wide head lock; within a lane, entries are
-- chained exactly as before. Existing entries are lane 0, whose hash format is unchanged
-- (an entry of another lane also hashes its lane). `pos` orders a tenant's entries across
-- lanes for listing (append order, from a sequence; not part of what the chain proves).
ALTER TABLE audit_log ADD COLUMN lane BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN pos BIGINT;
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
UPDATE audit_log SET pos = seq;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;
CREATE SEQUENCE audit_pos;
SELECT setval('audit_pos', COALESCE((SELECT max(seq) FROM audit_log), 0) + 1, false);
ALTER TABLE audit_log ALTER COLUMN pos SET DEFAULT nextval('audit_pos');
ALTER TABLE audit_log ALTER COLUMN pos SET NOT NULL;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (tenant_id, lane, seq);
CREATE INDEX audit_log_pos ON audit_log(tenant_id, pos);

ALTER TABLE audit_heads ADD COLUMN lane BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_heads DROP CONSTRAINT audit_heads_pkey;
ALTER TABLE audit_heads ADD PRIMARY KEY (tenant_id, lane);
INSERT INTO audit_heads (tenant_id, lane, seq, hash)
SELECT t.id, l, 0, '0000000000000000000000000000000000000000000000000000000000000000'
FROM tenants t CROSS JOIN generate_series(1, 31) AS l;

-- Signed checkpoints of the lane heads, written by the scheduler's `audit-checkpoint` job (and
-- by `riskdesk audit checkpoint --store`). Exported for an auditor to keep outside the
-- database: a checkpoint cannot be forged without the signing key, so a chain rewritten after
-- it is caught by `riskdesk audit verify --checkpoints` even if this table is rewritten too.
CREATE TABLE audit_checkpoints (
    tenant_id  UUID NOT NULL REFERENCES tenants(id),
    lane       BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    at         TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, lane, seq)
);
