-- Several riskdesk processes over one database: a job that must run in one process at a time
-- (the daily dunning run, the SLA pass, the Partner Center poll, housekeeping) runs in the one
-- holding its lease. A holder renews its leases every few seconds; when it stops renewing (it
-- died), another process takes the lease over once `lease_until` (µs, the holders' clocks) has
-- passed, and the epoch counts the hand-overs.
CREATE TABLE leases (
    name         TEXT PRIMARY KEY,
    holder       TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL,
    acquired_at  BIGINT NOT NULL
);

-- A counter per customer, bumped in every unit of work that changes the customer's monitoring
-- state (events ingested, events attached to it), under that unit's per-customer lock. A
-- process's cached history of the customer is current exactly when it was cached at the
-- counter's value before this unit's bump: no time-to-live guessing, whichever process wrote.
CREATE TABLE customer_ingest_heads (
    tenant_id    UUID NOT NULL REFERENCES tenants(id),
    customer_id  UUID NOT NULL,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id)
);
