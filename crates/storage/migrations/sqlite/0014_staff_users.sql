-- People, not tokens: staff accounts per tenant, their dashboard sessions, and sign-in
-- throttling. A `support` role joins the four (tokens may carry it too, so api_tokens is rebuilt
-- with the wider CHECK: SQLite cannot alter a constraint in place).
CREATE TABLE api_tokens_new (
    id           BLOB PRIMARY KEY,
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'collections', 'auditor', 'support')),
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
INSERT INTO api_tokens_new SELECT id, tenant_id, name, role, secret_hash, created_at, revoked_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_tenant ON api_tokens(tenant_id);

-- A person's email is their sign-in name across the installation (lower case), so it is unique
-- across tenants. password_hash is an argon2id PHC string (NULL: Entra ID sign-in only);
-- totp_secret is the base32 secret of the optional second factor.
CREATE TABLE staff_users (
    id             BLOB PRIMARY KEY,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'collections', 'auditor', 'support')),
    password_hash  TEXT,
    totp_secret    TEXT,
    oidc_subject   TEXT,
    locale         TEXT NOT NULL DEFAULT 'en',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    disabled_at    INTEGER,
    UNIQUE (tenant_id, oidc_subject)
);
CREATE INDEX staff_users_tenant ON staff_users(tenant_id, email);

-- The cookie carries 32 random bytes; only their SHA-256 is stored.
CREATE TABLE ui_sessions (
    id                   BLOB PRIMARY KEY,
    user_id              BLOB NOT NULL REFERENCES staff_users(id),
    tenant_id            BLOB NOT NULL REFERENCES tenants(id),
    secret_hash          TEXT NOT NULL UNIQUE,
    locale               TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    last_seen_at         INTEGER NOT NULL,
    idle_expires_at      INTEGER NOT NULL,
    absolute_expires_at  INTEGER NOT NULL,
    revoked_at           INTEGER,
    user_agent           TEXT,
    ip                   TEXT
);
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);

-- Failed sign-ins per key (an email, lower case): so many within a window lock the key for a
-- while, on every process sharing the database.
CREATE TABLE signin_failures (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    first_at      INTEGER NOT NULL,
    locked_until  INTEGER
);
