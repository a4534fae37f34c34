-- No table references tenants(id) any more. Every insert into a table with such a foreign key
-- took a FOR KEY SHARE lock on its tenant's one row; concurrent writers of one tenant (every
-- audited request writes several such rows) then share that row lock through MultiXacts, which
-- PostgreSQL creates and extends for each new locker: the more connections, the slower each
-- insert. Tenants are never deleted, and every row's tenant_id comes from the authenticated
-- caller's tenant or a row read in the same unit of work, so the constraint only cost.
-- Foreign keys between other tables (an invoice's customer, a step's invoice) stay.
DO $$
DECLARE r record;
BEGIN
    FOR r IN
        SELECT conrelid::regclass AS tbl, conname
        FROM pg_constraint
        WHERE contype = 'f' AND confrelid = 'tenants'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;
END $$;
