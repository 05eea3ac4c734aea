//! UTC timestamps as milliseconds since the Unix epoch, shown in RFC 3339.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, in milliseconds since 1970-01-01T00:00:00Z. Callers pass
/// it in; nothing in the core reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// This instant plus `millis`.
    pub const fn plus_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// RFC 3339 in UTC: `2026-03-26T12:00:00Z` on a whole second, otherwise
    /// with milliseconds, `2026-03-26T12:00:00.250Z`. Milliseconds are kept so
    /// that a time read from the API and passed back (`since`) is exact.
    pub fn to_rfc3339(self) -> String {
        let seconds = self.0.div_euclid(1000);
        let millis = self.0.rem_euclid(1000);
        match OffsetDateTime::from_unix_timestamp(seconds) {
            Ok(at) => {
                let (y, mo, d) = (at.year(), u8::from(at.month()), at.day());
                let (h, mi, s) = (at.hour(), at.minute(), at.second());
                if millis == 0 {
                    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
                } else {
                    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
                }
            }
            // Out of the representable range (years beyond ±9999): clamp rather
            // than fail, since this only ever formats times we produced.
            Err(_) if seconds < 0 => "0000-01-01T00:00:00Z".to_owned(),
            Err(_) => "9999-12-31T23:59:59Z".to_owned(),
        }
    }

    /// Parses RFC 3339 with any offset (`Z`, `+02:00`), keeping milliseconds.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let millis = at.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis).ok().map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
    }
}

#[cfg(feature = "openapi")]
impl schemars::JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 in UTC, with milliseconds unless on a whole second.",
            "examples": ["2026-03-26T12:00:00Z"]
        })
    }
}
