//! The Durable Object class: the only module of inbox-do that names `worker::`.
//!
//! It adapts DO SQLite to the [`Sql`] port (including atomic transactions via
//! `storage.transactionSync`, which workers-rs does not expose), reads the clock,
//! and hands each request body to [`InboxService`].

use crate::InboxService;
use protocol::{ApiError, Reply, Timestamp};
use schema::{Rows, Sql, SqlError, Value};
use std::cell::RefCell;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::ScopedClosure;
use wasm_bindgen::prelude::*;
use worker::{
    Date, DurableObject, Env, Request, Response, Result, SqlStorage, SqlStorageValue, State,
    durable_object,
};

#[wasm_bindgen]
extern "C" {
    /// `DurableObjectStorage`, seen only for the method workers-rs lacks.
    #[wasm_bindgen(extends = js_sys::Object)]
    #[derive(Debug, Clone)]
    type TransactionalStorage;

    /// Runs the callback in a transaction; a throw from it rolls everything back.
    #[wasm_bindgen(method, catch, js_name = transactionSync)]
    fn transaction_sync(
        this: &TransactionalStorage,
        body: &ScopedClosure<'_, dyn FnMut() -> std::result::Result<(), JsValue>>,
    ) -> std::result::Result<JsValue, JsValue>;
}

/// The Durable Object hosting one inbox.
#[durable_object]
pub struct InboxObject {
    state: State,
    service: RefCell<InboxService>,
}

impl std::fmt::Debug for InboxObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxObject").finish_non_exhaustive()
    }
}

impl DurableObject for InboxObject {
    fn new(state: State, _env: Env) -> Self {
        install_logger();
        InboxObject {
            state,
            service: RefCell::new(InboxService::new(schema::MIGRATIONS)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Every await happens before the service is borrowed: the handling
        // itself is synchronous, so requests to this object never interleave
        // inside it (and never observe a half-applied migration).
        let request = req
            .headers()
            .get(protocol::wire::REQUEST_HEADER)
            .ok()
            .flatten()
            .unwrap_or_default();
        let body = match req.bytes().await {
            Ok(body) => body,
            Err(error) => {
                worker::console_error!("inbox: reading request body failed: {error}");
                return into_response(Reply::error(&ApiError::internal()));
            }
        };
        let now = Timestamp::from_millis(i64::try_from(Date::now().as_millis()).unwrap_or(0));
        let storage = self.state.storage();
        let sql = DoSql {
            sql: storage.sql(),
            storage: storage
                .as_raw()
                .unchecked_ref::<TransactionalStorage>()
                .clone(),
        };
        let reply = self.service.borrow_mut().serve(&sql, &request, &body, now);
        into_response(reply)
    }
}

fn into_response(reply: Reply) -> Result<Response> {
    let headers = worker::Headers::new();
    for (name, value) in &reply.headers {
        headers.set(name, value)?;
    }
    // An empty body is sent as no body at all (a 204 must not carry one).
    let response = if reply.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(reply.body)?
    };
    Ok(response.with_status(reply.status).with_headers(headers))
}

/// DO SQLite behind the [`Sql`] port.
struct DoSql {
    sql: SqlStorage,
    storage: TransactionalStorage,
}

impl Sql for DoSql {
    fn exec(&self, query: &str, params: &[Value]) -> std::result::Result<Rows, SqlError> {
        let bindings = params.iter().map(to_storage_value).collect::<Vec<_>>();
        let cursor = self
            .sql
            .exec(query, bindings)
            .map_err(|e| SqlError::new(e.to_string()))?;
        let columns = cursor.column_names();
        let mut rows = Vec::new();
        for row in cursor.raw() {
            let row = row.map_err(|e| SqlError::new(e.to_string()))?;
            rows.push(row.into_iter().map(from_storage_value).collect());
        }
        Ok(Rows { columns, rows })
    }

    fn transaction(
        &self,
        body: &mut dyn FnMut() -> std::result::Result<(), SqlError>,
    ) -> std::result::Result<(), SqlError> {
        let mut failure: Option<SqlError> = None;
        let mut run = || match body() {
            Ok(()) => Ok(()),
            Err(error) => {
                failure = Some(error);
                // Throwing is how transactionSync learns to roll back.
                Err(JsValue::from_str("transaction body failed"))
            }
        };
        let closure = ScopedClosure::borrow_mut(&mut run);
        let outcome = self.storage.transaction_sync(&closure);
        drop(closure);
        match (outcome, failure) {
            (_, Some(error)) => Err(error),
            (Ok(_), None) => Ok(()),
            (Err(thrown), None) => Err(SqlError::new(format!("{thrown:?}"))),
        }
    }
}

fn to_storage_value(value: &Value) -> SqlStorageValue {
    match value {
        Value::Null => SqlStorageValue::Null,
        Value::Integer(i) => SqlStorageValue::Integer(*i),
        Value::Real(f) => SqlStorageValue::Float(*f),
        Value::Text(s) => SqlStorageValue::String(s.clone()),
        Value::Blob(b) => SqlStorageValue::Blob(b.clone()),
    }
}

fn from_storage_value(value: SqlStorageValue) -> Value {
    match value {
        SqlStorageValue::Null => Value::Null,
        // We never bind booleans (they would be stored as text); map defensively.
        SqlStorageValue::Boolean(b) => Value::Integer(i64::from(b)),
        SqlStorageValue::Integer(i) => Value::Integer(i),
        SqlStorageValue::Float(f) => Value::Real(f),
        SqlStorageValue::String(s) => Value::Text(s),
        SqlStorageValue::Blob(b) => Value::Blob(b),
    }
}

/// Sends `log` records to the Workers console (which `wrangler tail` and the
/// dashboard show). Installed once per isolate.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            match record.level() {
                log::Level::Error => worker::console_error!("{}", record.args()),
                log::Level::Warn => worker::console_warn!("{}", record.args()),
                _ => worker::console_log!("{}", record.args()),
            }
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;

fn install_logger() {
    // Fails only when already installed in this isolate, which is fine.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
