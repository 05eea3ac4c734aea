//! A plain HTTP response, produced by the platform-free cores and turned into a
//! platform response only at the edge.

use crate::ApiError;
use serde::Serialize;

/// The content type of every JSON body we send.
pub const JSON: &str = "application/json; charset=utf-8";

/// Status, headers and body. This is also the InboxDO's answer on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Headers, in order; names in their canonical lowercase.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON body with `status`.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status,
                headers: vec![("content-type".to_owned(), JSON.to_owned())],
                body,
            },
            // Our response types serialize infallibly (no maps with non-string
            // keys, no failing Serialize impls); answer 500 rather than panic.
            Err(_) => Reply::error(&ApiError::internal()),
        }
    }

    /// The contract's error body, with the status its code implies.
    pub fn error(error: &ApiError) -> Reply {
        let body = serde_json::to_vec(error).unwrap_or_else(|_| {
            br#"{"error":"Something went wrong on our side.","code":"internal"}"#.to_vec()
        });
        Reply {
            status: error.status(),
            headers: vec![("content-type".to_owned(), JSON.to_owned())],
            body,
        }
    }

    /// 204 with no body.
    pub fn no_content() -> Reply {
        Reply {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
