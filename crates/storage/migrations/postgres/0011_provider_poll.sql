-- Where the Partner Center poller is in each feed (per cloud instance): e.g. the last audit
-- day read completely. The poller re-reads from there; events are deduplicated by their ids.
CREATE TABLE provider_cursors (
    instance    TEXT NOT NULL,
    feed        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (instance, feed)
);
CREATE INDEX provider_subscriptions_by_id ON provider_subscriptions(provider_subscription_id);
CREATE INDEX provider_customers_by_id ON provider_customers(provider_customer_id);

-- An Azure subscription inside an Azure plan ("Azure entitlement"): cancelled one by one.
ALTER TABLE provider_subscriptions ADD COLUMN provider_entitlement_id TEXT;
