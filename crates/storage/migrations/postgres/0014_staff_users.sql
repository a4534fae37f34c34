-- People, not tokens: staff accounts per tenant, their dashboard sessions, and sign-in
-- throttling. A `support` role joins the four (tokens may carry it too).
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('admin', 'analyst', 'collections', 'auditor', 'support'));

-- A person's email is their sign-in name across the installation (lower case), so it is unique
-- across tenants. password_hash is an argon2id PHC string (NULL: Entra ID sign-in only);
-- totp_secret is the base32 secret of the optional second factor.
CREATE TABLE staff_users (
    id             UUID PRIMARY KEY,
    tenant_id      UUID NOT NULL REFERENCES tenants(id),
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'collections', 'auditor', 'support')),
    password_hash  TEXT,
    totp_secret    TEXT,
    oidc_subject   TEXT,
    locale         TEXT NOT NULL DEFAULT 'en',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    disabled_at    BIGINT,
    UNIQUE (tenant_id, oidc_subject)
);
CREATE INDEX staff_users_tenant ON staff_users(tenant_id, email);

-- The cookie carries 32 random bytes; only their SHA-256 is stored.
CREATE TABLE ui_sessions (
    id                   UUID PRIMARY KEY,
    user_id              UUID NOT NULL REFERENCES staff_users(id),
    tenant_id            UUID NOT NULL REFERENCES tenants(id),
    secret_hash          TEXT NOT NULL UNIQUE,
    locale               TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    last_seen_at         BIGINT NOT NULL,
    idle_expires_at      BIGINT NOT NULL,
    absolute_expires_at  BIGINT NOT NULL,
    revoked_at           BIGINT,
    user_agent           TEXT,
    ip                   TEXT
);
CREATE INDEX ui_sessions_user ON ui_sessions(user_id);

-- Failed sign-ins per key (an email, lower case): so many within a window lock the key for a
-- while, on every process sharing the database.
CREATE TABLE signin_failures (
    key           TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    first_at      BIGINT NOT NULL,
    locked_until  BIGINT
);
