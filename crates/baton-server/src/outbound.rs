//! Where Baton itself sends HTTP requests (push deliveries and completion callbacks): URL
//! validation, the allow/deny list of target hosts and networks, and the shared client.
//!
//! Rules are checked against the URL's host as written: host-name entries match names
//! (`example.com` exactly, `.example.com` any subdomain), network entries match IP literals
//! and `localhost` (as `127.0.0.1` and `::1`). Names are not resolved here, so a name that
//! resolves into a denied network is not caught; deny by name as well where that matters.
//! The deny list wins over the allow list; an empty allow list allows every host.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;

/// Longest URL a push subscription or callback may target.
pub const URL_CHARS_MAX: usize = 2048;
/// Most extra headers a push subscription or callback may carry.
pub const HEADERS_MAX: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Rules {
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl Rules {
    fn parse(key: &'static str, text: &str) -> Result<Rules, (&'static str, String)> {
        let mut rules = Rules::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                rules.nets.push(net);
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                rules.nets.push(IpNet::from(ip));
            } else if entry
                .trim_start_matches('.')
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && entry.trim_start_matches('.').contains(|c: char| c != '.')
            {
                rules.names.push(entry.to_ascii_lowercase());
            } else {
                return Err((
                    key,
                    format!("{entry:?} is neither a host name nor a network like 10.0.0.0/8"),
                ));
            }
        }
        Ok(rules)
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    fn matches(&self, host: &Host) -> bool {
        match host {
            Host::Ip(ip) => self.nets.iter().any(|net| net.contains(ip)),
            Host::Name(name) => {
                let name_match = self.names.iter().any(|rule| match rule.strip_prefix('.') {
                    Some(suffix) => name.ends_with(rule.as_str()) || name == suffix,
                    None => name == rule,
                });
                let localhost = name == "localhost"
                    && [
                        IpAddr::from([127, 0, 0, 1]),
                        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    ]
                    .iter()
                    .any(|ip| self.nets.iter().any(|net| net.contains(ip)));
                name_match || localhost
            }
        }
    }
}

enum Host {
    Ip(IpAddr),
    Name(String),
}

/// The parsed `outbound_allow` and `outbound_deny` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundRules {
    allow: Rules,
    deny: Rules,
}

/// Why a target URL is refused: the field it was in is named by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// Not an absolute http(s) URL, or too long.
    Invalid(String),
    /// The allow/deny list refuses its host.
    NotAllowed(String),
}

impl OutboundRules {
    /// Parses both lists; the error names the config key.
    pub fn parse(allow: &str, deny: &str) -> Result<Self, (&'static str, String)> {
        Ok(OutboundRules {
            allow: Rules::parse("outbound_allow", allow)?,
            deny: Rules::parse("outbound_deny", deny)?,
        })
    }

    /// Checks `url`: an absolute `http` or `https` URL with a host, at most `URL_CHARS_MAX`
    /// characters, whose host the lists allow.
    pub fn check_url(&self, url: &str) -> Result<Url, TargetError> {
        if url.len() > URL_CHARS_MAX {
            return Err(TargetError::Invalid(format!(
                "longer than {URL_CHARS_MAX} characters"
            )));
        }
        let parsed = Url::parse(url)
            .map_err(|e| TargetError::Invalid(format!("{url:?} is not a valid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TargetError::Invalid(format!(
                "scheme {:?} is not http or https",
                parsed.scheme()
            )));
        }
        let Some(host_text) = parsed.host_str().filter(|h| !h.is_empty()) else {
            return Err(TargetError::Invalid(format!("{url:?} has no host")));
        };
        let host_text = host_text.to_ascii_lowercase();
        let bare = host_text.trim_start_matches('[').trim_end_matches(']');
        let host = match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Name(host_text.clone()),
        };
        if self.deny.matches(&host) {
            return Err(TargetError::NotAllowed(format!(
                "host {host_text} is in the server's outbound_deny list"
            )));
        }
        if !self.allow.is_empty() && !self.allow.matches(&host) {
            return Err(TargetError::NotAllowed(format!(
                "host {host_text} is not in the server's outbound_allow list"
            )));
        }
        Ok(parsed)
    }
}

/// Checks extra headers: at most `HEADERS_MAX`, each a valid HTTP header name and value.
/// Returns the offending header's name in the error.
pub fn check_headers<'a>(
    headers: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) -> Result<(), (Option<String>, String)> {
    if headers.len() > HEADERS_MAX {
        return Err((None, format!("at most {HEADERS_MAX} headers")));
    }
    for (name, value) in headers {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err((
                Some(name.clone()),
                "not a valid HTTP header name".to_string(),
            ));
        }
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            return Err((
                Some(name.clone()),
                "not a valid HTTP header value".to_string(),
            ));
        }
    }
    Ok(())
}

/// The client for push deliveries and callbacks. Redirects are not followed (a 3xx is a
/// failed delivery), so a target cannot bounce Baton to a host the lists refuse.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Describes a failed request in a few words: the status line, or the transport error.
pub fn failure_reason(
    result: &Result<reqwest::StatusCode, reqwest::Error>,
    timeout_ms: u64,
) -> String {
    match result {
        Ok(status) => format!("HTTP {status}"),
        Err(error) if error.is_timeout() => format!("timed out after {timeout_ms} ms"),
        Err(error) if error.is_connect() => format!("connection failed: {error}"),
        Err(error) => format!("request failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `https` targets work: the shared client opens a TLS session (rustls) to them.
    #[tokio::test]
    async fn the_client_speaks_tls_to_https_targets() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "https://127.0.0.1:{}/hook",
            listener.local_addr().expect("address").port()
        );
        let accept = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut first = [0u8; 3];
            socket.read_exact(&mut first).await.expect("read");
            first
        });
        let result = client().post(&url).body("x").send().await;
        // Not a TLS server: the handshake fails, but only after a ClientHello went out.
        assert!(result.is_err());
        let first = accept.await.expect("accept task");
        assert_eq!(first[0], 0x16, "a TLS handshake record");
        assert_eq!(first[1], 0x03, "TLS version major");
    }

    fn rules(allow: &str, deny: &str) -> OutboundRules {
        OutboundRules::parse(allow, deny).expect("valid rules")
    }

    #[test]
    fn default_rules_allow_loopback_and_deny_link_local() {
        let config = crate::config::ServerConfig::default();
        let rules = config.outbound_rules().expect("valid");
        assert!(rules.check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(rules.check_url("http://localhost/x").is_ok());
        assert!(rules.check_url("https://example.com/hook").is_ok());
        assert!(matches!(
            rules.check_url("http://169.254.169.254/latest/meta-data"),
            Err(TargetError::NotAllowed(_))
        ));
        assert!(matches!(
            rules.check_url("http://[fe80::1]/"),
            Err(TargetError::NotAllowed(_))
        ));
    }

    #[test]
    fn allow_list_restricts_and_deny_wins() {
        let rules = rules(".example.com,10.0.0.0/8", "bad.example.com");
        assert!(rules.check_url("http://a.example.com/").is_ok());
        assert!(rules.check_url("http://example.com/").is_ok());
        assert!(rules.check_url("http://10.1.2.3/").is_ok());
        for refused in [
            "http://bad.example.com/",
            "http://other.org/",
            "http://127.0.0.1/",
        ] {
            assert!(
                matches!(rules.check_url(refused), Err(TargetError::NotAllowed(_))),
                "{refused}"
            );
        }
        let loopback_denied = OutboundRules::parse("", "127.0.0.0/8,::1").expect("valid");
        assert!(matches!(
            loopback_denied.check_url("http://localhost:1/"),
            Err(TargetError::NotAllowed(_))
        ));
    }

    #[test]
    fn bad_urls_and_bad_rules_are_refused() {
        let rules = rules("", "");
        for bad in [
            "ftp://x/",
            "not a url",
            "http://",
            "/relative",
            "mailto:a@b",
        ] {
            assert!(
                matches!(rules.check_url(bad), Err(TargetError::Invalid(_))),
                "{bad}"
            );
        }
        let long = format!("http://x/{}", "a".repeat(URL_CHARS_MAX));
        assert!(matches!(
            rules.check_url(&long),
            Err(TargetError::Invalid(_))
        ));
        assert_eq!(
            OutboundRules::parse("10.0.0.0/99", "").map_err(|e| e.0),
            Err("outbound_allow")
        );
        assert_eq!(
            OutboundRules::parse("", "a b").map_err(|e| e.0),
            Err("outbound_deny")
        );
    }
}
