-- PostgreSQL's 0020 drops every foreign key to tenants(id): each such insert took a shared
-- lock on the tenant's one row, which concurrent writers shared through MultiXacts. SQLite has
-- one writer and no such lock, and dropping a constraint would mean rebuilding each table:
-- nothing changes here (the version is kept so both backends have the same list).
SELECT 1;
