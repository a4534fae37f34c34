-- The Secure Application Model: each cloud instance's delegated (app + user) consent. The
-- refresh token is stored encrypted (AES-256-GCM, "v1.<key id>.<base64 nonce+ciphertext>",
-- bound to its instance); no column ever holds a token in clear.
CREATE TABLE provider_connections (
    instance           TEXT PRIMARY KEY,
    -- connected | lost | disconnected
    state              TEXT NOT NULL,
    refresh_token      TEXT,
    -- When the last access token redeemed from the consent expires (µs).
    access_expires_at  BIGINT,
    connected_at       BIGINT,
    connected_by       TEXT,
    rotated_at         BIGINT,
    lost_at            BIGINT,
    last_error         TEXT,
    updated_at         BIGINT NOT NULL
);
-- Consent pages opened and not completed yet: the state value (its SHA-256), the PKCE verifier
-- (encrypted), who opened it, until when it may complete.
CREATE TABLE provider_consent_flows (
    state_hash   TEXT PRIMARY KEY,
    instance     TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    -- The tenant and the person (token name or staff email) who opened it.
    tenant_id    TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
