-- MFA at sign-up (one-time codes by SMS, TOTP enrolment) and the admin-access gate's facts.
CREATE TABLE signup_challenges (
    id            UUID PRIMARY KEY,
    tenant_id     UUID NOT NULL REFERENCES tenants(id),
    signup_id     UUID NOT NULL REFERENCES signups(id),
    channel       TEXT NOT NULL CHECK (channel IN ('sms', 'totp')),
    destination   TEXT,
    -- SHA-256 of (challenge id, code); the code itself is never stored or logged.
    code_hash     TEXT,
    -- TOTP shared secret (base32), kept to check codes.
    totp_secret   TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    provider_ref  TEXT
);
CREATE INDEX signup_challenges_signup ON signup_challenges(tenant_id, signup_id, created_at);

ALTER TABLE signups ADD COLUMN verified_at BIGINT;
ALTER TABLE customers ADD COLUMN verified_at BIGINT;
ALTER TABLE customers ADD COLUMN first_payment_at BIGINT;
ALTER TABLE customers ADD COLUMN admin_access_granted_at BIGINT;
