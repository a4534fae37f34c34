-- Anomaly detection on each customer's hourly spend per meter category: the next hour each
-- series will score. Hours before it have been scored (and alerted on) once; the detector's
-- state is rebuilt from `spend_hourly` when a process has none.
CREATE TABLE anomaly_series (
    tenant_id       UUID NOT NULL REFERENCES tenants(id),
    customer_id     UUID NOT NULL,
    meter_category  TEXT NOT NULL,
    next_hour       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, customer_id, meter_category)
);
