//! API keys: `ik_` followed by 32 random bytes in unpadded base64url.
//!
//! A key is shown once, at signup. Everything that is kept (KV's auth index, the
//! inbox's own row) holds only its SHA-256, and hashes are compared in constant
//! time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The prefix every API key starts with.
pub const KEY_PREFIX: &str = "ik_";
/// Bytes of randomness in a key.
pub const KEY_RANDOM_BYTES: usize = 32;
/// The length of a key's text: the prefix and 43 base64url characters.
pub const KEY_LEN: usize = KEY_PREFIX.len() + 43;

/// An API key in its secret, shown-once form. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

/// The prefix of the WebSocket subprotocol that carries a key.
pub const WEBSOCKET_KEY_PROTOCOL: &str = "inboxkit.key.";

impl ApiKey {
    /// The key made from `random`, which must come from a secure random source.
    pub fn from_random(random: [u8; KEY_RANDOM_BYTES]) -> ApiKey {
        ApiKey(format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random)))
    }

    /// Parses a key, accepting only the exact format; `None` for anything else.
    pub fn parse(text: &str) -> Option<ApiKey> {
        let body = text.strip_prefix(KEY_PREFIX)?;
        if text.len() != KEY_LEN {
            return None;
        }
        // Decoding (not just a character check) also refuses non-canonical
        // trailing bits, so each key has exactly one spelling.
        let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
        (decoded.len() == KEY_RANDOM_BYTES).then(|| ApiKey(text.to_owned()))
    }

    /// Extracts the key from an `Authorization` header value (`Bearer <key>`,
    /// the scheme case-insensitive). `None` when absent or malformed.
    pub fn from_authorization(header: &str) -> Option<ApiKey> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        ApiKey::parse(rest.trim())
    }

    /// The key a browser sends as a WebSocket subprotocol
    /// (`Sec-WebSocket-Protocol: inboxkit.key.<key>`, among others), with
    /// the protocol to echo back.
    pub fn from_websocket_protocols(header: &str) -> Option<(ApiKey, String)> {
        header.split(',').map(str::trim).find_map(|protocol| {
            let key = protocol.strip_prefix(WEBSOCKET_KEY_PROTOCOL)?;
            Some((ApiKey::parse(key)?, protocol.to_owned()))
        })
    }

    /// The first characters of the key (`ik_` and six more: 36 of its 256
    /// random bits), to recognise it by in a listing.
    pub fn prefix(&self) -> &str {
        &self.0[..KEY_PREFIX.len() + 6]
    }

    /// The key's text, to show to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the key: the only form that is ever stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    out
}

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The SHA-256 of an API key. Serialized as 64 lowercase hex digits.
#[derive(Clone, Copy, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Lowercase hex, as stored in KV keys and SQL.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<KeyHash> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(KeyHash(out))
    }
}

/// Constant-time equality: how long a comparison takes says nothing about
/// where two hashes first differ.
impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not a secret, but a short prefix is enough to tell two apart.
        write!(f, "KeyHash({}..)", &self.to_hex()[..8])
    }
}

impl Serialize for KeyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        KeyHash::from_hex(&text).ok_or_else(|| serde::de::Error::custom("not a SHA-256 hex digest"))
    }
}
