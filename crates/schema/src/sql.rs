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

impl Value {
    /// The name of this value's type, for error messages (never the value:
    /// it may be message content).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// Typed reads of one row's columns by index, each an [`SqlError`] when the
/// column is missing or holds another type (the error names the column's
/// index and the type found, never the value).
pub trait Row {
    /// Column `i` as text.
    fn text(&self, i: usize) -> Result<&str, SqlError>;
    /// Column `i` as an integer.
    fn int(&self, i: usize) -> Result<i64, SqlError>;
    /// Column `i` as a blob.
    fn blob(&self, i: usize) -> Result<&[u8], SqlError>;
    /// Column `i` as text, or `None` when it is NULL.
    fn opt_text(&self, i: usize) -> Result<Option<&str>, SqlError>;
    /// Column `i` as an integer, or `None` when it is NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>, SqlError>;
}

fn column(row: &[Value], i: usize) -> Result<&Value, SqlError> {
    row.get(i)
        .ok_or_else(|| SqlError::new(format!("column {i} is missing (the row has {})", row.len())))
}

fn mismatch(i: usize, wanted: &str, found: &Value) -> SqlError {
    SqlError::new(format!(
        "column {i} holds {}, not {wanted}",
        found.type_name()
    ))
}

impl Row for [Value] {
    fn text(&self, i: usize) -> Result<&str, SqlError> {
        match column(self, i)? {
            Value::Text(s) => Ok(s),
            other => Err(mismatch(i, "text", other)),
        }
    }

    fn int(&self, i: usize) -> Result<i64, SqlError> {
        match column(self, i)? {
            Value::Integer(n) => Ok(*n),
            other => Err(mismatch(i, "an integer", other)),
        }
    }

    fn blob(&self, i: usize) -> Result<&[u8], SqlError> {
        match column(self, i)? {
            Value::Blob(b) => Ok(b),
            other => Err(mismatch(i, "a blob", other)),
        }
    }

    fn opt_text(&self, i: usize) -> Result<Option<&str>, SqlError> {
        match column(self, i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            other => Err(mismatch(i, "text or null", other)),
        }
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, SqlError> {
        match column(self, i)? {
            Value::Null => Ok(None),
            Value::Integer(n) => Ok(Some(*n)),
            other => Err(mismatch(i, "an integer or null", other)),
        }
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

    /// This error, prefixed with what was being read (`"the inbox row"`).
    pub fn context(self, what: &str) -> Self {
        SqlError {
            message: format!("{what}: {}", self.message),
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

#[cfg(test)]
mod tests {
    use super::{Row, Value};

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_row_reads_typed_columns_and_names_a_mismatch_without_its_value() {
        let row = vec![
            Value::from("secret subject"),
            Value::Integer(7),
            Value::Null,
            Value::Blob(vec![1, 2]),
        ];
        let row = row.as_slice();
        assert_eq!(row.text(0), Ok("secret subject"));
        assert_eq!(row.int(1), Ok(7));
        assert_eq!(row.opt_text(2), Ok(None));
        assert_eq!(row.opt_int(2), Ok(None));
        assert_eq!(row.opt_int(1), Ok(Some(7)));
        assert_eq!(row.blob(3), Ok(&[1u8, 2][..]));
        let wrong = row.int(0).expect_err("text is not an integer");
        assert_eq!(wrong.message, "column 0 holds text, not an integer");
        assert!(row.opt_text(1).is_err());
        let missing = row.text(9).expect_err("no such column");
        assert_eq!(missing.message, "column 9 is missing (the row has 4)");
    }
}
