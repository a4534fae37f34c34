-- Rules can be scoped to sign-ups. SQLite cannot change a CHECK constraint in place: the table
-- is rebuilt (rule_hits keeps rule ids without a foreign key).
CREATE TABLE rules_new (
    id                BLOB PRIMARY KEY,
    tenant_id         BLOB NOT NULL REFERENCES tenants(id),
    name              TEXT NOT NULL,
    scope             TEXT NOT NULL CHECK (scope IN ('usage', 'activity', 'signup')),
    condition         TEXT NOT NULL,
    severity          TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    cooldown_seconds  INTEGER NOT NULL,
    mode              TEXT NOT NULL CHECK (mode IN ('active', 'shadow', 'disabled')),
    action_json       TEXT,
    builtin           TEXT,
    version           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
INSERT INTO rules_new SELECT id, tenant_id, name, scope, condition, severity, cooldown_seconds, mode, action_json,
    builtin, version, created_at, updated_at FROM rules;
DROP TABLE rules;
ALTER TABLE rules_new RENAME TO rules;
