//! A small blocking HTTP client for the suite (ureq, plain HTTP on loopback).

use crate::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A response: status, headers of interest, body text.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    /// The body as text (lossy for binary bodies).
    pub(crate) body: String,
    /// The body's exact bytes.
    pub(crate) bytes: Vec<u8>,
    /// Every header, names lowercased.
    pub(crate) headers: Vec<(String, String)>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON): for comparisons, where
    /// a body that is not JSON shows as a mismatch.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as JSON, or an error naming the answer: for reading a value
    /// out of it, so that a changed shape fails instead of reading as empty.
    pub(crate) fn parsed(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).map_err(|e| {
            format!(
                "the answer is not JSON ({e}): {} {}",
                self.status, self.body
            )
        })
    }

    /// The string at `field` of a JSON body, or an error naming the answer.
    pub(crate) fn string(&self, field: &str) -> Result<String> {
        self.parsed()?[field]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no string {field:?} in {} {}", self.status, self.body))
    }

    /// The unsigned number at `field` of a JSON body, or an error naming the answer.
    pub(crate) fn number(&self, field: &str) -> Result<u64> {
        self.parsed()?[field]
            .as_u64()
            .ok_or_else(|| format!("no number {field:?} in {} {}", self.status, self.body))
    }

    /// The `code` of an error body.
    pub(crate) fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_owned()
    }
}

/// How many mails were posted to wrangler's local email endpoint through the
/// clients of one session, and how many of them the endpoint refused itself.
#[derive(Debug, Default)]
pub(crate) struct MailCounts {
    delivered: AtomicUsize,
    refused_by_wrangler: AtomicUsize,
}

impl MailCounts {
    pub(crate) fn count(&self, refused_by_wrangler: bool) {
        self.delivered.fetch_add(1, Ordering::SeqCst);
        if refused_by_wrangler {
            self.refused_by_wrangler.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// (delivered, refused by wrangler's endpoint before any Worker ran).
    pub(crate) fn get(&self) -> (usize, usize) {
        (
            self.delivered.load(Ordering::SeqCst),
            self.refused_by_wrangler.load(Ordering::SeqCst),
        )
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

/// A client for one base URL. Non-2xx statuses are answers, not errors.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    base: String,
    agent: ureq::Agent,
    mail: Arc<MailCounts>,
}

impl Client {
    pub(crate) fn new(base: &str) -> Client {
        Client::counting(base, Arc::default())
    }

    /// A client whose mail deliveries are counted in `mail` (shared by the
    /// clients of one session).
    pub(crate) fn counting(base: &str, mail: Arc<MailCounts>) -> Client {
        Client {
            base: base.to_owned(),
            agent: agent(Duration::from_secs(30)),
            mail,
        }
    }

    /// This client with `timeout` for a whole request rather than 30 s (for
    /// calls that may rightly take that long, as a long poll).
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Client {
        Client {
            agent: agent(timeout),
            ..self.clone()
        }
    }

    /// Where this client's mail deliveries are counted.
    pub(crate) fn mail_counts(&self) -> &MailCounts {
        &self.mail
    }

    /// The base URL, `http://host:port`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn get(&self, path: &str) -> Result<Response> {
        self.request("GET", path, &[], None)
    }

    /// Sends `method` to `path` with `headers` and an optional body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let url = format!("{}{}", self.base, path);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(body.map(<[u8]>::to_vec).unwrap_or_default())
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?;
        Ok(Response {
            status,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            headers,
        })
    }

    /// POST a JSON body.
    pub(crate) fn post_json(&self, path: &str, body: &str) -> Result<Response> {
        self.request(
            "POST",
            path,
            &[("content-type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    /// GET with a bearer key.
    pub(crate) fn get_with_key(&self, path: &str, key: &str) -> Result<Response> {
        let auth = format!("Bearer {key}");
        self.request("GET", path, &[("authorization", &auth)], None)
    }
}
