//! Plain HTTP at the edge: the request as the router reads it, the answer it
//! gives back, and the body limit the glue enforces while reading.

use crate::InboxNamespace;
use protocol::limits::MAX_JSON_BODY;
use protocol::{ApiError, ErrorCode, Reply};

/// Method, path, query, headers and the (already size-checked) body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, ... in upper case.
    pub method: String,
    /// The URL path, still percent-encoded.
    pub path: String,
    /// The query string without `?`, still percent-encoded.
    pub query: String,
    /// Headers; names compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// A request with no headers or body.
    pub fn new(method: &str, path: &str) -> Self {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        HttpRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            ..Default::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name`, case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The router's answer to a request.
#[derive(Debug)]
pub enum Outgoing<A> {
    /// An answer the router made itself (errors, health, signup, documents).
    Reply(Reply),
    /// An authenticated API call's answer from the InboxDO, passed through as
    /// it is (on Workers its `Response`: headers, body stream, WebSocket).
    Inbox(A),
}

impl<A> Outgoing<A> {
    /// The answer's HTTP status, for the log line.
    pub fn status<N: InboxNamespace<Answer = A>>(&self) -> u16 {
        match self {
            Outgoing::Reply(reply) => reply.status,
            Outgoing::Inbox(answer) => N::status(answer),
        }
    }
}

/// 413 for a body over `limit` (the route's: see
/// [`crate::routes::Route::body_limit`]).
pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("The body exceeds the limit of {limit} bytes."),
    )
}

/// A request body gathered chunk by chunk, refused as soon as it passes its
/// limit: whatever a client sends (a `Content-Length` or none, a chunked
/// body, a lying length), no more than the limit is ever held.
#[derive(Debug)]
pub struct BodyLimit {
    limit: usize,
    body: Vec<u8>,
}

/// A body passed its limit; the answer is [`too_large`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl BodyLimit {
    /// A limit of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        BodyLimit {
            limit,
            body: Vec::new(),
        }
    }

    /// The limit of JSON request bodies, [`MAX_JSON_BODY`].
    pub fn json() -> Self {
        BodyLimit::new(MAX_JSON_BODY)
    }

    /// Whether a declared `Content-Length` already passes the limit, so the
    /// body need not be read at all.
    pub fn refuses_length(&self, declared: u64) -> bool {
        usize::try_from(declared).map_or(true, |declared| declared > self.limit)
    }

    /// Takes the next chunk. `Err` once the body has passed the limit: stop
    /// reading and answer 413; the chunk that passed it is not kept.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        if chunk.len() > self.limit - self.body.len() {
            return Err(TooLarge);
        }
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    /// The whole body, within the limit.
    pub fn finish(self) -> Vec<u8> {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` until the limit refuses one; the bytes held at the end
    /// and how many chunks were read.
    fn read(limit: usize, chunks: &[&[u8]]) -> (Result<Vec<u8>, TooLarge>, usize) {
        let mut body = BodyLimit::new(limit);
        for (read, chunk) in chunks.iter().enumerate() {
            if let Err(refused) = body.feed(chunk) {
                assert!(body.body.len() <= limit, "held more than the limit");
                return (Err(refused), read + 1);
            }
        }
        (Ok(body.finish()), chunks.len())
    }

    #[test]
    fn a_body_up_to_the_limit_is_kept_whole() {
        assert_eq!(read(6, &[b"ab", b"cd", b"ef"]), (Ok(b"abcdef".to_vec()), 3));
        assert_eq!(read(6, &[]), (Ok(Vec::new()), 0));
        assert_eq!(read(6, &[b"", b"abcdef", b""]), (Ok(b"abcdef".to_vec()), 3));
        assert_eq!(read(0, &[b""]), (Ok(Vec::new()), 1));
    }

    #[test]
    fn one_byte_over_is_refused_and_reading_stops_there() {
        let ten: &[u8] = b"0123456789";
        // The seventh byte is refused; the chunks after it are never read.
        assert_eq!(read(6, &[b"abc", b"defg", ten, ten]), (Err(TooLarge), 2));
        assert_eq!(read(6, &[b"abcdefg"]), (Err(TooLarge), 1));
        assert_eq!(read(6, &[b"abcdef", b"g"]), (Err(TooLarge), 2));
        assert_eq!(read(0, &[b"a"]), (Err(TooLarge), 1));
    }

    #[test]
    fn a_stream_of_any_length_holds_at_most_the_limit() {
        // A chunked body of 1 GiB in 16 KiB chunks: refused after the 5th chunk.
        let chunk = vec![b'x'; 16 * 1024];
        let mut body = BodyLimit::json();
        let mut read = 0usize;
        for _ in 0..(1 << 16) {
            read += 1;
            if body.feed(&chunk).is_err() {
                break;
            }
        }
        assert_eq!(read, MAX_JSON_BODY / chunk.len() + 1);
        assert_eq!(body.finish().len(), MAX_JSON_BODY);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_unread() {
        let limit = BodyLimit::json();
        assert!(!limit.refuses_length(0));
        assert!(!limit.refuses_length(MAX_JSON_BODY as u64));
        assert!(limit.refuses_length(MAX_JSON_BODY as u64 + 1));
        assert!(limit.refuses_length(u64::MAX));
    }

    #[test]
    fn the_refusal_is_the_contracts_413() {
        let reply = Reply::error(&too_large(MAX_JSON_BODY));
        assert_eq!(reply.status, 413);
        assert_eq!(
            String::from_utf8(reply.body).expect("utf-8"),
            format!(
                r#"{{"error":"The body exceeds the limit of {MAX_JSON_BODY} bytes.","code":"too_large"}}"#
            )
        );
    }
}
