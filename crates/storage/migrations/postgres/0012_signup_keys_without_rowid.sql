-- SQLite stores identifiers and velocity records WITHOUT ROWID from this version on; PostgreSQL's
-- tables have no rowid, so nothing changes here (the file keeps both backends' versions equal).
SELECT 1;
