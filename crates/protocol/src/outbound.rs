//! Checking a send request before anything is built or stored: plain
//! recipient addresses (at most [`MAX_RECIPIENTS`], each delivered once), a
//! one-line subject, at least one body, and nothing that could smuggle a
//! header into the message (CR or LF in a header field).

use crate::ApiError;
use crate::api::{AddressList, Disposition, NewAttachment, RecipientKind, SendRequest};
use crate::filename::{check_content_id, check_outbound_name, media_type};
use crate::limits::{MAX_ATTACHMENTS, MAX_RECIPIENTS};
use crate::wire::WireAttachment;
use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The longest address accepted (RFC 5321's path limit, less the brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// The longest local part (RFC 5321).
pub const MAX_LOCAL_LEN: usize = 64;
/// The longest subject, in characters (RFC 5322's line limit).
pub const MAX_SUBJECT_CHARS: usize = 998;

/// A send request that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSend {
    /// Every recipient, in the order given (`to`, then `cc`, then `bcc`),
    /// each address once: of duplicates (compared case-insensitively) the
    /// first is kept. Never empty; the first is a `to` recipient.
    pub recipients: Vec<ValidRecipient>,
    /// The Reply-To addresses.
    pub reply_to: Vec<String>,
    /// The subject, if any.
    pub subject: Option<String>,
    /// The plain-text body, if any.
    pub text: Option<String>,
    /// The HTML body, if any.
    pub html: Option<String>,
    /// The files attached.
    pub attachments: Attached,
}

/// Checked attachments: each file's description, and all their bytes one
/// after the other (the payload the inbox reads them from).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    /// Each file, in the order given.
    pub files: Vec<WireAttachment>,
    /// Their decoded bytes, in that order.
    pub payload: Vec<u8>,
}

/// Base64 as senders write it: the standard alphabet, padding optional, and
/// bits past the last byte ignored (Python's and Node's decoders accept
/// both). Line breaks are removed before.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Checks the files of a send, reply or forward and decodes them: a safe
/// file name, a valid media type (`application/octet-stream` when none),
/// base64 content, a usable and unique Content-ID. The error names the
/// field (`attachments[2].content`).
pub fn attachments(list: &[NewAttachment]) -> Result<Attached, ApiError> {
    if list.len() > MAX_ATTACHMENTS {
        return Err(ApiError::invalid(format!(
            "Invalid `attachments`: at most {MAX_ATTACHMENTS} files, and there are {}.",
            list.len()
        )));
    }
    let mut attached = Attached::default();
    for (index, file) in list.iter().enumerate() {
        let field = |name: &str| format!("attachments[{index}].{name}");
        let invalid =
            |name: &str, why: &str| ApiError::invalid(format!("Invalid `{}`: {why}.", field(name)));
        check_outbound_name(&file.filename).map_err(|why| invalid("filename", why))?;
        let content_type = match &file.content_type {
            Some(declared) => media_type(declared).ok_or_else(|| {
                invalid(
                    "contentType",
                    "give a media type as `type/subtype`, such as application/pdf",
                )
            })?,
            None => "application/octet-stream".to_owned(),
        };
        if let Some(id) = &file.content_id {
            check_content_id(id).map_err(|why| invalid("contentId", why))?;
            if attached
                .files
                .iter()
                .any(|f| f.content_id.as_deref() == Some(id.as_str()))
            {
                return Err(invalid(
                    "contentId",
                    "another attachment of this message has the same one",
                ));
            }
        }
        let compact: Vec<u8> = file
            .content
            .bytes()
            .filter(|b| !matches!(b, b'\r' | b'\n'))
            .collect();
        let before = attached.payload.len();
        LENIENT_BASE64
            .decode_vec(&compact, &mut attached.payload)
            .map_err(|_| {
                invalid(
                    "content",
                    "it is not base64 (standard alphabet, `+` and `/`)",
                )
            })?;
        attached.files.push(WireAttachment {
            filename: file.filename.clone(),
            content_type,
            content_id: file.content_id.clone(),
            inline: file.disposition == Some(Disposition::Inline),
            size: (attached.payload.len() - before) as u64,
        });
    }
    Ok(attached)
}

/// One checked recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRecipient {
    /// The address, with its domain lowercased.
    pub address: String,
    /// How it was named.
    pub kind: RecipientKind,
    /// Where it was given, for an error about it: `to`, `cc[2]`.
    pub field: String,
}

/// Checks each address of `list` (the field `field`), naming the bad one.
fn addresses(field: &str, list: &AddressList) -> Result<Vec<(String, String)>, ApiError> {
    list.as_slice()
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let name = list.item_name(field, index);
            parse_address(text)
                .map(|address| (address, name.clone()))
                .map_err(|why| ApiError::invalid(format!("Invalid `{name}`: {why}.")))
        })
        .collect()
}

/// Checks the recipients of a send or a forward: at least one `to`, at most
/// [`MAX_RECIPIENTS`] in all, each a plain address; each address once, in
/// the order given.
pub fn recipients(
    to: &AddressList,
    cc: Option<&AddressList>,
    bcc: Option<&AddressList>,
) -> Result<Vec<ValidRecipient>, ApiError> {
    SendRequest {
        to: to.clone(),
        cc: cc.cloned(),
        bcc: bcc.cloned(),
        ..SendRequest::default()
    }
    .checked_recipients()
}

/// Checks the bodies of a reply or forward: no NUL, and with `required`, at
/// least one of them.
pub fn bodies(text: Option<&str>, html: Option<&str>, required: bool) -> Result<(), ApiError> {
    for (name, body) in [("text", text), ("html", html)] {
        if body.is_some_and(|b| b.contains('\0')) {
            return Err(ApiError::invalid(format!(
                "Invalid `{name}`: it must not contain NUL characters."
            )));
        }
    }
    if required && text.is_none() && html.is_none() {
        return Err(ApiError::invalid(
            "A message needs a body: give `text`, `html`, or both.",
        ));
    }
    Ok(())
}

impl SendRequest {
    /// Checks the request; the error names the field and what is wrong.
    pub fn validate(self) -> Result<ValidSend, ApiError> {
        let recipients = self.checked_recipients()?;
        let reply_to = match &self.reply_to {
            Some(list) if list.as_slice().len() > MAX_RECIPIENTS => {
                return Err(ApiError::invalid(format!(
                    "Invalid `replyTo`: give at most {MAX_RECIPIENTS} addresses."
                )));
            }
            Some(list) => addresses("replyTo", list)?
                .into_iter()
                .map(|(address, _)| address)
                .collect(),
            None => Vec::new(),
        };
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
        bodies(self.text.as_deref(), self.html.as_deref(), true)?;
        let attachments = attachments(&self.attachments)?;
        Ok(ValidSend {
            recipients,
            reply_to,
            subject: self.subject,
            text: self.text,
            html: self.html,
            attachments,
        })
    }

    fn checked_recipients(&self) -> Result<Vec<ValidRecipient>, ApiError> {
        if self.to.as_slice().is_empty() {
            return Err(ApiError::invalid(
                "Invalid `to`: give at least one address.",
            ));
        }
        let given = [&self.cc, &self.bcc]
            .into_iter()
            .flatten()
            .map(|list| list.as_slice().len())
            .sum::<usize>()
            + self.to.as_slice().len();
        if given > MAX_RECIPIENTS {
            return Err(ApiError::invalid(format!(
                "Too many recipients: `to`, `cc` and `bcc` name {given} addresses together; \
                 a message may have at most {MAX_RECIPIENTS}."
            )));
        }
        let mut recipients: Vec<ValidRecipient> = Vec::new();
        let lists = [
            (RecipientKind::To, Some(&self.to)),
            (RecipientKind::Cc, self.cc.as_ref()),
            (RecipientKind::Bcc, self.bcc.as_ref()),
        ];
        for (kind, list) in lists {
            let Some(list) = list else { continue };
            for (address, field) in addresses(kind.as_str(), list)? {
                // Delivered once: the first naming wins (a To and Cc of one
                // address is a To).
                if !recipients
                    .iter()
                    .any(|r| r.address.eq_ignore_ascii_case(&address))
                {
                    recipients.push(ValidRecipient {
                        address,
                        kind,
                        field,
                    });
                }
            }
        }
        Ok(recipients)
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
