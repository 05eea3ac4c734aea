//! The router's deployment settings, read from its environment variables.

/// Deployment settings the router reads from its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterConfig {
    /// The mail domains, lowercased. Addresses are given on the first; mail to
    /// any of them is accepted. Signup, authenticated calls and inbound mail
    /// answer 503 `not_configured` (mail: a temporary failure) without one.
    pub mail_domains: Vec<String>,
    /// The development setting that lets webhooks use plain `http` to
    /// loopback addresses (`WEBHOOK_ALLOW_HTTP_LOOPBACK = "true"`). Off in
    /// production: webhooks must then be https to a public host.
    pub allow_http_loopback_webhooks: bool,
    /// Signups allowed per client address (IPv4, or IPv6 /64) per hour; 0
    /// turns the limit off. From `SIGNUPS_PER_HOUR`, default 20.
    pub signups_per_hour: u32,
}

impl RouterConfig {
    /// Reads `MAIL_DOMAIN`'s value: comma-separated domains.
    pub fn from_mail_domain_var(value: Option<&str>) -> Self {
        RouterConfig {
            mail_domains: value
                .unwrap_or("")
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect(),
            allow_http_loopback_webhooks: false,
            signups_per_hour: protocol::limits::SIGNUPS_PER_HOUR,
        }
    }

    /// Reads the router's variables: `MAIL_DOMAIN`,
    /// `WEBHOOK_ALLOW_HTTP_LOOPBACK` (exactly `"true"` turns it on) and
    /// `SIGNUPS_PER_HOUR` (a number; anything else keeps the default).
    pub fn from_vars(
        mail_domain: Option<&str>,
        allow_http_loopback: Option<&str>,
        signups_per_hour: Option<&str>,
    ) -> Self {
        let defaults = Self::from_mail_domain_var(mail_domain);
        RouterConfig {
            allow_http_loopback_webhooks: allow_http_loopback.map(str::trim) == Some("true"),
            signups_per_hour: signups_per_hour
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(defaults.signups_per_hour),
            ..defaults
        }
    }
}
