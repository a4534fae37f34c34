-- The audit chain in lanes (issue 20). SQLite has a single writer, so a tenant's chain keeps
-- one lane (0) here; PostgreSQL splits it into 32. The columns are the same on both backends.
-- `pos` orders a tenant's entries for listing; on SQLite it equals `seq`.
ALTER TABLE audit_log ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_log ADD COLUMN pos INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER audit_log_no_update;
UPDATE audit_log SET pos = seq;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE INDEX audit_log_pos ON audit_log(tenant_id, pos);

ALTER TABLE audit_heads ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;

CREATE TABLE audit_checkpoints (
    tenant_id  BLOB NOT NULL REFERENCES tenants(id),
    lane       INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    at         TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, lane, seq)
);
