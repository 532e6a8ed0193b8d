//! The SQL both backends speak. Every statement of the store is written
//! once, in the subset SQLite and PostgreSQL share (`?N` placeholders,
//! `ON CONFLICT`, `TRUE`, no engine-specific functions); this module binds
//! its parameters and reads its columns on whichever connection a
//! transaction has.

use std::cell::RefCell;
use std::collections::HashMap;

use bytes::BytesMut;
use postgres::types::{IsNull, Type, to_sql_checked};

/// A statement parameter. Parameters are ids, names, numbers and
/// ciphertext; no secret value is ever bound (so no error can quote one).
#[derive(Clone, Copy)]
pub(super) enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Value<'_> {
    /// What kind of value it is, for messages (never the value itself).
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// PostgreSQL's client wants parameters printable; they print as their kind.
impl std::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// What can be bound as a [`Value`].
pub(super) trait ToValue {
    fn value(&self) -> Value<'_>;
}

impl ToValue for i64 {
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl ToValue for u32 {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToValue::value)
    }
}

/// The parameters of one statement: `args![id, name, mac]`.
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::vault::store::sql::ToValue::value(&$arg)),*] as &[$crate::vault::store::sql::Value<'_>]
    };
}
pub(super) use args;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Value::Int(v) if *ty == Type::BOOL => (v != 0).to_sql(ty, out),
            Value::Text(v) if <&str as postgres::types::ToSql>::accepts(ty) => v.to_sql(ty, out),
            Value::Blob(v) if *ty == Type::BYTEA => v.to_sql(ty, out),
            other => Err(format!("{} bound where the statement expects {ty}", other.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A statement's failure on either backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A column holding something aivault never writes there.
    #[error("column {column}: {reason}")]
    Decode { column: usize, reason: String },
}

impl SqlError {
    pub(super) fn decode(column: usize, reason: impl std::fmt::Display) -> Self {
        SqlError::Decode { column, reason: reason.to_string() }
    }

    /// Whether the connection to the server was lost (the transaction it
    /// ran is rolled back by the server).
    pub fn connection_lost(&self) -> bool {
        let SqlError::Postgres(e) = self else { return false };
        // The server ends a session with a FATAL error (an administrator's
        // command, a shutdown: SQLSTATE class 57P) or a connection
        // exception (class 08); the client sees a closed socket or I/O error.
        let ended_by_server = e.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            matches!(db.severity(), "FATAL" | "PANIC") || code.starts_with("57P") || code.starts_with("08")
        });
        ended_by_server
            || e.is_closed()
            || std::error::Error::source(e).is_some_and(|cause| cause.is::<std::io::Error>())
    }
}

/// A PostgreSQL error on one line: the server's severity and message (not
/// its detail, which may quote a row), or the client's kind of failure and
/// its cause.
pub(super) fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {}", cause.to_string().replace('\n', " ")),
            None => e.to_string(),
        },
    }
}

/// What reading a row gives.
pub(super) type Read<T> = Result<T, SqlError>;

/// A row being read.
pub(super) enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    pub(super) fn get<T: Column>(&self, i: usize) -> Result<T, SqlError> {
        match self {
            Row::Sqlite(row) => T::sqlite(row, i).map_err(|e| match e {
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..) => SqlError::decode(i, e),
                other => other.into(),
            }),
            Row::Postgres(row) => T::postgres(row, i),
        }
    }
}

/// A column type both backends read the same way.
pub(super) trait Column: Sized {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self>;
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self, SqlError>;
}

macro_rules! same_on_both {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                row.get(i)
            }
            fn postgres(row: &postgres::Row, i: usize) -> Result<Self, SqlError> {
                row.try_get(i).map_err(|e| SqlError::decode(i, e))
            }
        }
    )*};
}
same_on_both!(i64, String, Vec<u8>, Option<i64>, Option<String>, Option<Vec<u8>>);

/// Flags are integers in both schemas; `EXISTS (…)` is a boolean in
/// PostgreSQL.
impl Column for bool {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        row.get(i)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self, SqlError> {
        if row.columns().get(i).is_some_and(|c| *c.type_() == Type::BOOL) {
            row.try_get(i).map_err(|e| SqlError::decode(i, e))
        } else {
            i64::postgres(row, i).map(|v| v != 0)
        }
    }
}

impl Column for u32 {
    fn sqlite(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        row.get(i)
    }
    fn postgres(row: &postgres::Row, i: usize) -> Result<Self, SqlError> {
        u32::try_from(i64::postgres(row, i)?).map_err(|e| SqlError::decode(i, e))
    }
}

/// Statements a PostgreSQL connection has prepared, by their SQL as written.
pub(super) type Prepared = HashMap<String, postgres::Statement>;

/// The open transaction of a [`super::Tx`].
pub(super) enum Conn<'a> {
    Sqlite(super::sqlite::Transaction<'a>),
    Postgres { tx: RefCell<postgres::Transaction<'a>>, prepared: RefCell<&'a mut Prepared> },
}

impl Conn<'_> {
    /// The server's statement for `sql`, prepared once per connection:
    /// `serve` and the daemon run the same few statements on every call.
    fn prepared(
        tx: &mut postgres::Transaction<'_>,
        prepared: &mut Prepared,
        sql: &str,
    ) -> Result<postgres::Statement, SqlError> {
        if let Some(statement) = prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = tx.prepare(&numbered_placeholders(sql))?;
        prepared.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    fn postgres_rows(
        tx: &RefCell<postgres::Transaction<'_>>,
        prepared: &RefCell<&mut Prepared>,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Vec<postgres::Row>, SqlError> {
        let mut tx = tx.borrow_mut();
        let statement = Self::prepared(&mut tx, &mut prepared.borrow_mut(), sql)?;
        Ok(tx.query(&statement, &postgres_params(args))?)
    }

    /// Runs `sql`; the number of rows it changed.
    pub(super) fn execute(&self, sql: &str, args: &[Value<'_>]) -> Result<usize, SqlError> {
        match self {
            Conn::Sqlite(tx) => Ok(tx.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))?),
            Conn::Postgres { tx, prepared } => {
                let mut tx = tx.borrow_mut();
                let statement = Self::prepared(&mut tx, &mut prepared.borrow_mut(), sql)?;
                Ok(tx.execute(&statement, &postgres_params(args))? as usize)
            }
        }
    }

    /// Every row `sql` selects, read by `read`.
    pub(super) fn query<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        mut read: impl FnMut(&Row<'_>) -> Result<T, SqlError>,
    ) -> Result<Vec<T>, SqlError> {
        match self {
            Conn::Sqlite(tx) => {
                let mut statement = tx.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(read(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Conn::Postgres { tx, prepared } => Self::postgres_rows(tx, prepared, sql, args)?
                .iter()
                .map(|r| read(&Row::Postgres(r)))
                .collect(),
        }
    }

    /// The first row `sql` selects, if any.
    pub(super) fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnOnce(&Row<'_>) -> Result<T, SqlError>,
    ) -> Result<Option<T>, SqlError> {
        match self {
            Conn::Sqlite(tx) => {
                let mut statement = tx.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(args))?;
                rows.next()?.map(|row| read(&Row::Sqlite(row))).transpose()
            }
            Conn::Postgres { tx, prepared } => Self::postgres_rows(tx, prepared, sql, args)?
                .first()
                .map(|r| read(&Row::Postgres(r)))
                .transpose(),
        }
    }

    /// The one row `sql` always selects (a count, an `EXISTS`).
    pub(super) fn query_one<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        read: impl FnOnce(&Row<'_>) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        self.query_opt(sql, args, read)?.ok_or_else(|| SqlError::decode(0, "the statement returned no row"))
    }

    pub(super) fn commit(self) -> Result<(), SqlError> {
        match self {
            Conn::Sqlite(tx) => Ok(tx.commit()?),
            Conn::Postgres { tx, .. } => Ok(tx.into_inner().commit()?),
        }
    }
}

fn postgres_params<'v>(args: &'v [Value<'_>]) -> Vec<&'v (dyn postgres::types::ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn postgres::types::ToSql + Sync)).collect()
}

/// `?1` → `$1`, outside quoted text: the one spelling the two engines do
/// not share.
pub(super) fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        if c == '\'' {
            quoted = !quoted;
        }
        out.push(if c == '?' && !quoted { '$' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_outside_quotes_are_numbered_the_postgres_way() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
    }

    #[test]
    fn values_bind_to_the_types_postgres_expects() {
        use postgres::types::ToSql;
        let mut out = BytesMut::new();
        assert!(Value::Int(7).to_sql_checked(&Type::INT8, &mut out).is_ok());
        assert!(Value::Int(7).to_sql_checked(&Type::INT4, &mut out).is_ok());
        assert!(Value::Int(1 << 40).to_sql_checked(&Type::INT4, &mut out).is_err());
        assert!(Value::Text("x").to_sql_checked(&Type::TEXT, &mut out).is_ok());
        assert!(Value::Text("x").to_sql_checked(&Type::BYTEA, &mut out).is_err());
        assert!(Value::Blob(b"x").to_sql_checked(&Type::BYTEA, &mut out).is_ok());
        assert!(matches!(Value::Null.to_sql_checked(&Type::BYTEA, &mut out), Ok(IsNull::Yes)));
    }
}
