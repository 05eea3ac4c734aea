//! The SQL port: what the inbox logic needs from a database, and no more.

/// A SQLite value. Booleans are stored as `Integer` 0/1 (DO SQLite would bind a
/// Rust `bool` as the text "true"/"false").
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// A 64-bit integer. On DO SQLite integers travel as f64: keep them under 2^53.
    Integer(i64),
    /// A float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

/// The result of one statement: its column names and all its rows, read to the
/// end (a DO SQL cursor must be consumed before any `.await`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// The only row, or `None` when there is none (more than one is an error in
    /// the caller's query, reported as such).
    pub fn single(&self) -> Result<Option<&[Value]>, SqlError> {
        match self.rows.as_slice() {
            [] => Ok(None),
            [row] => Ok(Some(row)),
            _ => Err(SqlError::new(format!(
                "expected at most one row, got {}",
                self.rows.len()
            ))),
        }
    }
}

/// A database error, with the engine's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SQL error: {message}")]
pub struct SqlError {
    /// What the engine said.
    pub message: String,
}

impl SqlError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        SqlError {
            message: message.into(),
        }
    }
}

/// A synchronous SQLite connection, as Durable Objects provide.
pub trait Sql {
    /// Runs one statement with positional `?` parameters and reads all its rows.
    fn exec(&self, query: &str, params: &[Value]) -> Result<Rows, SqlError>;

    /// Runs `body` atomically: when it returns `Ok`, all its writes commit;
    /// when it returns `Err` (or a statement fails), none of them do.
    fn transaction(&self, body: &mut dyn FnMut() -> Result<(), SqlError>) -> Result<(), SqlError>;
}
