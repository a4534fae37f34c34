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
