//! The inbox database: its migrations, the runner that applies them, and the
//! small synchronous [`Sql`] port both are written against.
//!
//! Durable Object SQLite refuses `BEGIN`, `SAVEPOINT` and `PRAGMA user_version`,
//! so atomicity comes from the port ([`Sql::transaction`], which the DO binds to
//! `storage.transactionSync`) and the applied migrations are recorded in our own
//! table, `schema_migrations`.

mod baseline;
mod migrations;
mod runner;
mod sql;

pub use migrations::{MIGRATIONS, Migration};
pub use runner::{MigrateError, MigrationReport, migrate};
pub use sql::{Row, Rows, Sql, SqlError, Value};

#[cfg(test)]
mod tests;
