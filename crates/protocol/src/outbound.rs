//! Checking a send request before anything is built or stored: one plain
//! recipient address, a one-line subject, at least one body, and nothing that
//! could smuggle a header into the message (CR or LF in a header field).

use crate::ApiError;
use crate::api::SendRequest;

/// The longest address accepted (RFC 5321's path limit, less the brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// The longest local part (RFC 5321).
pub const MAX_LOCAL_LEN: usize = 64;
/// The longest subject, in characters (RFC 5322's line limit).
pub const MAX_SUBJECT_CHARS: usize = 998;

/// A send request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSend {
    /// The recipient, with its domain lowercased.
    pub to: String,
    /// The subject, if any.
    pub subject: Option<String>,
    /// The plain-text body, if any.
    pub text: Option<String>,
    /// The HTML body, if any.
    pub html: Option<String>,
}

impl SendRequest {
    /// Checks the request; the error names the field and what is wrong.
    pub fn validate(self) -> Result<ValidSend, ApiError> {
        let to = parse_address(&self.to)
            .map_err(|why| ApiError::invalid(format!("Invalid `to`: {why}.")))?;
        if let Some(subject) = &self.subject {
            if subject.contains(['\r', '\n']) {
                return Err(ApiError::invalid(
                    "Invalid `subject`: it must be one line (no CR or LF).",
                ));
            }
            if subject.chars().any(|c| c.is_control() && c != '\t') {
                return Err(ApiError::invalid(
                    "Invalid `subject`: it must not contain control characters.",
                ));
            }
            if subject.chars().count() > MAX_SUBJECT_CHARS {
                return Err(ApiError::invalid(format!(
                    "Invalid `subject`: it is longer than {MAX_SUBJECT_CHARS} characters."
                )));
            }
        }
        for (name, body) in [("text", &self.text), ("html", &self.html)] {
            if body.as_deref().is_some_and(|b| b.contains('\0')) {
                return Err(ApiError::invalid(format!(
                    "Invalid `{name}`: it must not contain NUL characters."
                )));
            }
        }
        if self.text.is_none() && self.html.is_none() {
            return Err(ApiError::invalid(
                "A message needs a body: give `text`, `html`, or both.",
            ));
        }
        Ok(ValidSend {
            to,
            subject: self.subject,
            text: self.text,
            html: self.html,
        })
    }
}

/// Reads one plain address, `local@domain`, and returns it with the domain
/// lowercased. The local part is a dot-atom (RFC 5322) and the domain a
/// dotted name of letters, digits and hyphens (internationalized domains in
/// their `xn--` form). Display names, lists, comments, quoted local parts and
/// address literals are refused rather than guessed at.
pub fn parse_address(text: &str) -> Result<String, &'static str> {
    if text.contains(['\r', '\n']) {
        return Err("it must be one line (no CR or LF)");
    }
    if text.len() > MAX_ADDRESS_LEN {
        return Err("it is longer than 254 bytes");
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return Err("it must be one address of the form name@example.com");
    };
    if local.is_empty() || local.len() > MAX_LOCAL_LEN {
        return Err("the part before @ must be 1 to 64 characters");
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if !local
        .split('.')
        .all(|atom| !atom.is_empty() && atom.chars().all(atext))
    {
        return Err(
            "it must be one plain address of the form name@example.com (no display name, list, quotes or spaces)",
        );
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err(
            "the domain must be a name such as example.com (international names in their xn-- form)",
        );
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("the domain must be a name, not an IP address");
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}
