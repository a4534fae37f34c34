-- One open case per customer, by constraint: it was kept by the single writer and a plain
-- index. Should a book hold two open cases of one customer from an earlier version, the oldest
-- stays open; each other is dismissed, with a timeline entry naming the case it was folded
-- into (ref_id).
CREATE TEMPORARY TABLE case_folds AS
SELECT id, tenant_id, status, keep FROM (
    SELECT id, tenant_id, status,
           first_value(id) OVER (PARTITION BY tenant_id, customer_id ORDER BY opened_at, id) AS keep
    FROM cases
    WHERE customer_id IS NOT NULL AND status NOT IN ('resolved', 'dismissed')
)
WHERE id <> keep;

INSERT INTO case_entries (id, tenant_id, case_id, at, kind, actor, text, ref_id, data_json)
SELECT randomblob(16), tenant_id, id, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
       'status', 'system:migration',
       'dismissed: the customer had an older open case; this one is folded into it', keep,
       json_object('from', status, 'to', 'dismissed')
FROM case_folds;

UPDATE cases
SET status = 'dismissed',
    closed_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
    updated_at = CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)
WHERE id IN (SELECT id FROM case_folds);

DROP TABLE case_folds;

DROP INDEX cases_customer_open;
CREATE UNIQUE INDEX cases_customer_open ON cases(tenant_id, customer_id)
    WHERE status NOT IN ('resolved', 'dismissed');
