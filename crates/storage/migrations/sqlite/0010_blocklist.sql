-- The partner's block list: typed identifiers (email, domain, phone, ip range, bin, device),
-- normalised, each until an optional expiry; removal is recorded, never a delete.
CREATE TABLE blocklist (
    id          BLOB PRIMARY KEY,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    kind        TEXT NOT NULL CHECK (kind IN ('email', 'domain', 'phone', 'ip', 'bin', 'device')),
    value       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    case_id     BLOB,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    removed_at  INTEGER,
    removed_by  TEXT
);
CREATE INDEX blocklist_lookup ON blocklist(tenant_id, kind, value);
