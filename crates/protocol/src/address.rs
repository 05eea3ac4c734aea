//! Recipient addresses of inbound mail: which inbox, which tag.

use crate::Handle;

/// A recipient routed to an inbox: `handle[+tag]@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The inbox.
    pub handle: Handle,
    /// The part after the first `+` in the local part, as written (kept on
    /// the message, ignored for routing).
    pub tag: Option<String>,
    /// The whole address, lowercased.
    pub address: String,
}

/// Why a recipient is not one of ours. Every variant is permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    /// Not `local@domain`.
    #[error("not an email address")]
    Malformed,
    /// A domain this deployment does not serve.
    #[error("this server does not accept mail for that domain")]
    ForeignDomain,
    /// The local part cannot be a handle (so no inbox has it).
    #[error("no such mailbox")]
    NoSuchMailbox,
}

impl Recipient {
    /// Routes `address` (an envelope recipient) among `domains`. The local
    /// part is lowercased and a `+tag` suffix dropped to find the handle.
    pub fn parse(address: &str, domains: &[String]) -> Result<Recipient, RecipientError> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@').ok_or(RecipientError::Malformed)?;
        if local.is_empty() || domain.is_empty() {
            return Err(RecipientError::Malformed);
        }
        let domain = domain.to_ascii_lowercase();
        if !domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
            return Err(RecipientError::ForeignDomain);
        }
        let (base, tag) = match local.split_once('+') {
            Some((base, tag)) => (base, Some(tag.to_owned())),
            None => (local, None),
        };
        let handle = Handle::parse(base).map_err(|_| RecipientError::NoSuchMailbox)?;
        Ok(Recipient {
            handle,
            tag: tag.filter(|t| !t.is_empty()),
            address: format!("{}@{domain}", local.to_lowercase()),
        })
    }
}
