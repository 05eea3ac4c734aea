//! The rules for what clients name in the lifecycle calls: an
//! `Idempotency-Key`, a key's name, a retention period. Checked by the
//! router (a clear 400) and again by the InboxDO where it stores them.

use crate::ApiError;
use crate::limits::{MAX_IDEMPOTENCY_KEY, MAX_KEY_NAME_CHARS, RETENTION_DAYS};

/// The header that makes a send, reply or forward safe to retry.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// An `Idempotency-Key` value: 1 to 256 of `[A-Za-z0-9-._~]`, taken as sent
/// (case-sensitive).
pub fn check_idempotency_key(text: &str) -> Result<&str, ApiError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
    if text.is_empty() {
        return Err(ApiError::invalid(
            "Invalid `Idempotency-Key`: it is empty; send 1 to 256 of A-Z a-z 0-9 - . _ ~ \
             (a UUID is a good choice), or no header at all.",
        ));
    }
    if text.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid(format!(
            "Invalid `Idempotency-Key`: {} characters; at most {MAX_IDEMPOTENCY_KEY}.",
            text.len()
        )));
    }
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(ApiError::invalid(format!(
            "Invalid `Idempotency-Key`: {bad:?} is not allowed; use only A-Z a-z 0-9 - . _ ~."
        )));
    }
    Ok(text)
}

/// A key's name: 1 to 100 characters once trimmed, no control characters.
pub fn check_key_name(text: &str) -> Result<String, ApiError> {
    let name = text.trim();
    if name.is_empty() {
        return Err(ApiError::invalid(
            "Invalid `name`: give the key a name to recognise it by.",
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_KEY_NAME_CHARS {
        return Err(ApiError::invalid(format!(
            "Invalid `name`: {chars} characters; at most {MAX_KEY_NAME_CHARS}."
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "Invalid `name`: control characters are not allowed.",
        ));
    }
    Ok(name.to_owned())
}

/// A retention period in days, or `None` (keep everything).
pub fn check_retention(days: Option<u32>) -> Result<Option<u32>, ApiError> {
    match days {
        Some(days) if !RETENTION_DAYS.contains(&days) => Err(ApiError::invalid(format!(
            "Invalid `retentionDays`: {days}; give {} to {} days, or null to keep messages.",
            RETENTION_DAYS.start(),
            RETENTION_DAYS.end()
        ))),
        days => Ok(days),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_follow_the_contract() {
        for good in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "A.b_c~d-e",
            &"x".repeat(256),
        ] {
            assert_eq!(check_idempotency_key(good).ok(), Some(good), "{good:?}");
        }
        for bad in ["", " ", "a b", "a/b", "ä", "a\n", "a=b", &"x".repeat(257)] {
            let error = check_idempotency_key(bad).expect_err(bad);
            assert!(error.error.contains("Idempotency-Key"), "{}", error.error);
        }
    }

    #[test]
    fn key_names_are_trimmed_and_bounded() {
        assert_eq!(
            check_key_name("  monitor ").ok().as_deref(),
            Some("monitor")
        );
        assert_eq!(
            check_key_name("ci — nightly").ok().as_deref(),
            Some("ci — nightly")
        );
        for bad in ["", "   ", "a\u{0}b", "tab\there", &"n".repeat(101)] {
            assert!(check_key_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_key_name(&"n".repeat(100)).is_ok());
        assert!(
            check_key_name(&"é".repeat(100)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn retention_is_one_day_to_ten_years_or_none() {
        assert_eq!(check_retention(None).ok(), Some(None));
        assert_eq!(check_retention(Some(1)).ok(), Some(Some(1)));
        assert_eq!(check_retention(Some(3650)).ok(), Some(Some(3650)));
        assert!(check_retention(Some(0)).is_err());
        assert!(check_retention(Some(3651)).is_err());
    }
}
