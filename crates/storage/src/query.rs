//! A small portable query layer: one SQL text and one list of typed arguments, executed by
//! whichever backend the [`crate::Db`] holds, and rows decoded by column name through
//! [`RowLike`]. Repository code is written once for both backends.

use std::borrow::Cow;

use uuid::Uuid;

use crate::{Result, StorageError};

/// A bound argument. NULLs keep their type, so PostgreSQL can type `$n IS NULL OR col = $n`.
#[derive(Clone, Debug)]
pub enum Val {
    Uuid(Option<Uuid>),
    I64(Option<i64>),
    Text(Option<String>),
    /// PostgreSQL only (`$n::uuid[]`, for `unnest`: one statement text whatever the count);
    /// refused on SQLite.
    UuidArray(Vec<Uuid>),
    /// PostgreSQL only (`$n::int8[]`); refused on SQLite.
    I64Array(Vec<Option<i64>>),
    /// PostgreSQL only (`$n::text[]`); refused on SQLite.
    TextArray(Vec<Option<String>>),
    /// PostgreSQL only (`$n::uuid[]` with NULLs); refused on SQLite.
    OptUuidArray(Vec<Option<Uuid>>),
}

impl From<Vec<Option<String>>> for Val {
    fn from(v: Vec<Option<String>>) -> Self {
        Val::TextArray(v)
    }
}
impl From<Vec<Option<Uuid>>> for Val {
    fn from(v: Vec<Option<Uuid>>) -> Self {
        Val::OptUuidArray(v)
    }
}

impl From<Vec<Uuid>> for Val {
    fn from(v: Vec<Uuid>) -> Self {
        Val::UuidArray(v)
    }
}
impl From<Vec<Option<i64>>> for Val {
    fn from(v: Vec<Option<i64>>) -> Self {
        Val::I64Array(v)
    }
}

impl From<Uuid> for Val {
    fn from(v: Uuid) -> Self {
        Val::Uuid(Some(v))
    }
}
impl From<Option<Uuid>> for Val {
    fn from(v: Option<Uuid>) -> Self {
        Val::Uuid(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I64(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::I64(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_owned()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(Some(v.clone()))
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::Text(v.map(str::to_owned))
    }
}
impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Self {
        Val::Text(v.clone())
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            // UUIDs are 16-byte BLOBs on SQLite.
            Val::Uuid(Some(u)) => ToSqlOutput::Borrowed(ValueRef::Blob(u.as_bytes())),
            Val::I64(Some(i)) => ToSqlOutput::Owned(Value::Integer(*i)),
            Val::Text(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Uuid(None) | Val::I64(None) | Val::Text(None) => ToSqlOutput::Owned(Value::Null),
            Val::UuidArray(_) | Val::I64Array(_) | Val::TextArray(_) | Val::OptUuidArray(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "array parameters are for PostgreSQL only".into(),
                ));
            }
        })
    }
}

/// A query: SQL with `$1…$n` placeholders (understood by both backends) and its arguments.
#[derive(Clone, Debug)]
pub struct Q {
    pub(crate) sql: Cow<'static, str>,
    pub(crate) args: Vec<Val>,
}

impl Q {
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Q {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    pub fn bind(mut self, v: impl Into<Val>) -> Self {
        self.args.push(v.into());
        self
    }
}

/// `$first, $first+1, …` — `n` placeholders for an `IN (…)` list.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `col IN (…ids)` from placeholder `$first`, and its arguments. On PostgreSQL one array
/// parameter (`col = ANY($first::uuid[])`): a generic plan of a list of hundreds of
/// parameters does not use the index on `col` (a dunning batch's 500 customers read 114,000
/// steps' rows for 1,000: 527 ms, against 2.6 ms with the array). SQLite: one per id.
pub fn any_uuid(
    backend: crate::Backend,
    col: &str,
    first: usize,
    ids: &[Uuid],
) -> (String, Vec<Val>) {
    match backend {
        crate::Backend::Postgres => (
            format!("{col} = ANY(${first}::uuid[])"),
            vec![Val::UuidArray(ids.to_vec())],
        ),
        crate::Backend::Sqlite => (
            format!("{col} IN ({})", placeholders(first, ids.len())),
            ids.iter().map(|id| Val::from(*id)).collect(),
        ),
    }
}

/// Typed access to a result row by column name, whatever the backend.
pub trait RowLike {
    fn uuid(&self, col: &str) -> Result<Uuid>;
    fn i64(&self, col: &str) -> Result<i64>;
    fn opt_i64(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>>;
}

/// A type decoded from one row.
pub trait FromRow: Sized {
    fn from_row(r: &dyn RowLike) -> Result<Self>;
}

impl FromRow for i64 {
    fn from_row(r: &dyn RowLike) -> Result<Self> {
        r.i64("n")
    }
}

impl RowLike for sqlx::postgres::PgRow {
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        Ok(sqlx::Row::try_get(self, col)?)
    }
    fn uuid(&self, col: &str) -> Result<Uuid> {
        Ok(sqlx::Row::try_get(self, col)?)
    }
    fn i64(&self, col: &str) -> Result<i64> {
        Ok(sqlx::Row::try_get(self, col)?)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        Ok(sqlx::Row::try_get(self, col)?)
    }
    fn text(&self, col: &str) -> Result<String> {
        Ok(sqlx::Row::try_get(self, col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(sqlx::Row::try_get(self, col)?)
    }
}

/// Builds the sqlx query for PostgreSQL.
pub(crate) fn pg_query(
    q: &Q,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(q.sql.to_string()));
    for a in &q.args {
        query = match a {
            Val::Uuid(v) => query.bind(*v),
            Val::I64(v) => query.bind(*v),
            Val::Text(v) => query.bind(v.clone()),
            Val::UuidArray(v) => query.bind(v.clone()),
            Val::I64Array(v) => query.bind(v.clone()),
            Val::TextArray(v) => query.bind(v.clone()),
            Val::OptUuidArray(v) => query.bind(v.clone()),
        };
    }
    query
}

/// Binds `$n` parameters. SQLite numbers a named parameter by its first appearance in the
/// text, so `SET a = $3 WHERE id = $1` must not be bound positionally. The order is read from
/// the SQL text (one pass), not asked of SQLite: `sqlite3_bind_parameter_name` scans a list, so
/// asking it for each of a multi-row INSERT's 840 parameters was quadratic (measured: 63 % of
/// an ingest's CPU).
fn sqlite_bind(stmt: &mut rusqlite::CachedStatement<'_>, q: &Q) -> Result<()> {
    let order = first_appearance_order(&q.sql);
    if order.len() != stmt.parameter_count() {
        return Err(StorageError::Config(format!(
            "{} parameters found in the text, SQLite counts {}: {}",
            order.len(),
            stmt.parameter_count(),
            q.sql
        )));
    }
    for (idx, n) in order.into_iter().enumerate() {
        let arg = q
            .args
            .get(n - 1)
            .ok_or_else(|| StorageError::Config(format!("no argument for ${n} in: {}", q.sql)))?;
        stmt.raw_bind_parameter(idx + 1, arg)?;
    }
    Ok(())
}

/// The distinct `$n` of a SQL text in order of first appearance (how SQLite numbers them).
fn first_appearance_order(sql: &str) -> Vec<usize> {
    let b = sql.as_bytes();
    let mut seen: Vec<usize> = Vec::new();
    let mut is_seen: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            let mut n = 0usize;
            while j < b.len() && b[j].is_ascii_digit() {
                n = n * 10 + (b[j] - b'0') as usize;
                j += 1;
            }
            if j > start && n > 0 {
                if is_seen.len() <= n {
                    is_seen.resize(n + 1, false);
                }
                if !is_seen[n] {
                    is_seen[n] = true;
                    seen.push(n);
                }
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_are_numbered_by_first_appearance() {
        assert_eq!(
            super::first_appearance_order("UPDATE t SET a = $3, b = $2 WHERE id = $1 AND x = $3"),
            vec![3, 2, 1]
        );
        assert_eq!(
            super::first_appearance_order("SELECT 1"),
            Vec::<usize>::new()
        );
        assert_eq!(
            super::first_appearance_order("VALUES ($1, $10, $2)"),
            vec![1, 10, 2]
        );
    }
}

/// A SQLite row with its statement's column positions, looked up once per query: rusqlite's
/// by-name access asks SQLite for every column's name on every call (measured: 15 % of a
/// backtest's CPU).
struct SqliteRow<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    columns: &'a std::collections::HashMap<String, usize>,
}

impl SqliteRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, col: &str) -> Result<T> {
        match self.columns.get(col) {
            Some(i) => Ok(self.row.get(*i)?),
            None => Ok(self.row.get(col)?),
        }
    }
}

impl RowLike for SqliteRow<'_, '_> {
    fn opt_uuid(&self, col: &str) -> Result<Option<Uuid>> {
        let b: Option<Vec<u8>> = self.get(col)?;
        b.map(|b| {
            Uuid::from_slice(&b).map_err(|e| StorageError::Corrupt(format!("column {col}: {e}")))
        })
        .transpose()
    }
    fn uuid(&self, col: &str) -> Result<Uuid> {
        let b: Vec<u8> = self.get(col)?;
        Uuid::from_slice(&b).map_err(|e| StorageError::Corrupt(format!("column {col}: {e}")))
    }
    fn i64(&self, col: &str) -> Result<i64> {
        self.get(col)
    }
    fn opt_i64(&self, col: &str) -> Result<Option<i64>> {
        self.get(col)
    }
    fn text(&self, col: &str) -> Result<String> {
        self.get(col)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        self.get(col)
    }
}

/// Runs a query on a SQLite connection and decodes every row.
pub(crate) fn sqlite_fetch<T: FromRow>(c: &rusqlite::Connection, q: &Q) -> Result<Vec<T>> {
    let mut stmt = c.prepare_cached(&q.sql)?;
    sqlite_bind(&mut stmt, q)?;
    let columns: std::collections::HashMap<String, usize> = stmt
        .column_names()
        .into_iter()
        .enumerate()
        .map(|(i, n)| (n.to_owned(), i))
        .collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(T::from_row(&SqliteRow {
            row: r,
            columns: &columns,
        })?);
    }
    Ok(out)
}

pub(crate) fn sqlite_execute(c: &rusqlite::Connection, q: &Q) -> Result<u64> {
    let mut stmt = c.prepare_cached(&q.sql)?;
    sqlite_bind(&mut stmt, q)?;
    Ok(stmt.raw_execute()? as u64)
}
