//! Where Baton itself sends HTTP requests (push deliveries, completion callbacks, event
//! notifications, topic URL subscriptions): URL validation, the allow/deny list of target
//! hosts and networks, the guard against private addresses, and the shared client.
//!
//! Rules are checked against the URL's host as written: host-name entries match names
//! (`example.com` exactly, `.example.com` any subdomain), network entries match IP literals
//! and `localhost` (as `127.0.0.1` and `::1`). The deny list wins over the allow list; an
//! empty allow list allows every host.
//!
//! The private-address guard (`outbound_private`; on by default whenever Baton listens beyond
//! loopback) refuses loopback, private, link-local (cloud metadata), carrier-grade NAT and
//! unspecified addresses unless a network entry of the allow list names them. A name is
//! checked after DNS: the client's resolver ([`GuardedResolver`]) drops every refused address
//! of a name's answer, so the address actually connected to is one that was checked — a name
//! that resolves (or re-binds) to a private address is never connected to. Names the allow
//! list names explicitly are trusted with whatever they resolve to (except denied networks).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
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

    fn has_net(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }

    fn has_name(&self, name: &str) -> bool {
        self.names.iter().any(|rule| match rule.strip_prefix('.') {
            Some(suffix) => name.ends_with(rule.as_str()) || name == suffix,
            None => name == rule,
        })
    }

    fn matches(&self, host: &Host) -> bool {
        match host {
            Host::Ip(ip) => self.has_net(*ip),
            Host::Name(name) => {
                let name_match = self.has_name(name);
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

/// Networks the private-address guard refuses: loopback, RFC 1918 and unique-local private
/// networks, link-local (where cloud metadata services answer, e.g. 169.254.169.254 and
/// fd00:ec2::254), carrier-grade NAT, benchmarking, IETF protocol assignments, and the
/// unspecified addresses (which connect to the local host).
const PRIVATE_NETS: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

fn private_nets() -> Vec<IpNet> {
    PRIVATE_NETS
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

/// The parsed `outbound_allow` and `outbound_deny` settings, and whether private addresses
/// are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundRules {
    allow: Rules,
    deny: Rules,
    /// The private-address guard's networks; empty when it is off.
    private: Vec<IpNet>,
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
    /// Parses both lists; the error names the config key. The private-address guard is off
    /// ([`OutboundRules::refusing_private`] turns it on).
    pub fn parse(allow: &str, deny: &str) -> Result<Self, (&'static str, String)> {
        Ok(OutboundRules {
            allow: Rules::parse("outbound_allow", allow)?,
            deny: Rules::parse("outbound_deny", deny)?,
            private: Vec::new(),
        })
    }

    /// The same rules with the private-address guard on (`refuse`) or off.
    pub fn refusing_private(mut self, refuse: bool) -> Self {
        self.private = if refuse { private_nets() } else { Vec::new() };
        self
    }

    /// Whether the private-address guard is on.
    pub fn refuses_private(&self) -> bool {
        !self.private.is_empty()
    }

    /// Why an address may not be connected to, if it may not. `trusted_name`: the address
    /// is an answer for a name the allow list names (trusted to resolve anywhere but into
    /// the deny list).
    pub fn check_ip(&self, ip: IpAddr, trusted_name: bool) -> Result<(), String> {
        // `::ffff:127.0.0.1` is 127.0.0.1.
        let ip = ip.to_canonical();
        if self.deny.has_net(ip) {
            return Err(format!("{ip} is in the server's outbound_deny list"));
        }
        if !trusted_name
            && self.private.iter().any(|net| net.contains(&ip))
            && !self.allow.has_net(ip)
        {
            return Err(format!(
                "{ip} is a loopback, private or link-local address, which Baton does not send to while it listens beyond loopback (outbound_private); name it in outbound_allow to allow it"
            ));
        }
        Ok(())
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
        if self.refuses_private() {
            let refused = match &host {
                Host::Ip(ip) => self.check_ip(*ip, false).err(),
                // Names are checked as they resolve (`GuardedResolver`); `localhost` and its
                // subdomains are loopback by definition (RFC 6761).
                Host::Name(name) if name == "localhost" || name.ends_with(".localhost") => self
                    .check_ip(IpAddr::from([127, 0, 0, 1]), self.allow.has_name(name))
                    .err(),
                Host::Name(_) => None,
            };
            if let Some(reason) = refused {
                return Err(TargetError::NotAllowed(format!(
                    "host {host_text}: {reason}"
                )));
            }
        }
        Ok(parsed)
    }

    /// [`OutboundRules::check_url`], then, for a host name under the private-address guard,
    /// its DNS answer: refused when no address of it may be connected to (so a target that
    /// resolves to loopback is refused when it is configured, not only when it is used).
    pub async fn check_url_resolved(
        &self,
        url: &str,
        lookup: &Arc<Lookup>,
    ) -> Result<Url, TargetError> {
        let parsed = self.check_url(url)?;
        let Some(name) = parsed.domain().map(str::to_ascii_lowercase) else {
            return Ok(parsed);
        };
        if !self.refuses_private() {
            return Ok(parsed);
        }
        let addresses = lookup(name.clone()).await.map_err(|error| {
            TargetError::NotAllowed(format!("host {name} does not resolve: {error}"))
        })?;
        self.usable(&name, &addresses)
            .map(|_| parsed)
            .map_err(|reason| TargetError::NotAllowed(format!("host {name}: {reason}")))
    }

    /// The addresses of `name`'s answer that may be connected to; an error naming the refused
    /// ones when none may.
    fn usable(&self, name: &str, addresses: &[IpAddr]) -> Result<Vec<IpAddr>, String> {
        let trusted = self.allow.has_name(name);
        let mut refusals = Vec::new();
        let usable: Vec<IpAddr> = addresses
            .iter()
            .copied()
            .filter(|ip| match self.check_ip(*ip, trusted) {
                Ok(()) => true,
                Err(reason) => {
                    refusals.push(reason);
                    false
                }
            })
            .collect();
        if usable.is_empty() {
            return Err(match refusals.first() {
                Some(first) => format!("resolves only to refused addresses: {first}"),
                None => "resolves to no address".to_string(),
            });
        }
        Ok(usable)
    }
}

/// A DNS lookup: the system resolver's ([`system_lookup`]) or, in tests, a fixed table.
pub type Lookup = dyn Fn(String) -> futures::future::BoxFuture<'static, std::io::Result<Vec<IpAddr>>>
    + Send
    + Sync;

/// The system resolver (getaddrinfo, on tokio's blocking pool).
pub fn system_lookup() -> Arc<Lookup> {
    Arc::new(|name: String| {
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    })
}

/// The outbound client's resolver: answers a name with only the addresses the rules allow
/// to be connected to (see the module doc), or fails the connection naming why.
pub struct GuardedResolver {
    rules: OutboundRules,
    lookup: Arc<Lookup>,
}

impl GuardedResolver {
    pub fn new(rules: OutboundRules, lookup: Arc<Lookup>) -> Self {
        GuardedResolver { rules, lookup }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (rules, lookup) = (self.rules.clone(), self.lookup.clone());
        let name = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            let addresses = lookup(name.clone()).await?;
            let usable = rules
                .usable(&name, &addresses)
                .map_err(|reason| std::io::Error::other(format!("host {name}: {reason}")))?;
            let addrs: reqwest::dns::Addrs =
                Box::new(usable.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
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
/// failed delivery), so a target cannot bounce Baton to a host the lists refuse; names are
/// resolved by the [`GuardedResolver`] of `rules`; no proxy from the environment (it would
/// connect on Baton's behalf to addresses nobody checked); and it sends no credentials of
/// Baton's own, only the headers a subscription or callback names.
pub fn client(rules: &OutboundRules) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .no_proxy();
    if rules.refuses_private() {
        builder = builder.dns_resolver(Arc::new(GuardedResolver::new(
            rules.clone(),
            system_lookup(),
        )));
    }
    builder.build().unwrap_or_else(|_| reqwest::Client::new())
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
        let result = client(&OutboundRules::default())
            .post(&url)
            .body("x")
            .send()
            .await;
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
        let rules = config.outbound_rules(true).expect("valid");
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

    /// A lookup answering from a fixed table, for names that resolve (or re-bind) anywhere.
    fn table(entries: &'static [(&'static str, &'static [&'static str])]) -> Arc<Lookup> {
        Arc::new(move |name: String| {
            Box::pin(async move {
                let found = entries.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::NotFound, format!("no {name}"))
                })?;
                Ok(found
                    .1
                    .iter()
                    .map(|ip| ip.parse().expect("an IP"))
                    .collect())
            })
        })
    }

    #[test]
    fn the_private_guard_refuses_loopback_private_and_metadata_literals() {
        let guarded = rules("", "").refusing_private(true);
        for refused in [
            "http://127.0.0.1:8080/x",
            "http://127.9.9.9/",
            "http://10.1.2.3/",
            "http://172.20.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0:9324/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]/",
            "http://localhost:1/",
            "http://api.localhost/",
        ] {
            match guarded.check_url(refused) {
                Err(TargetError::NotAllowed(reason)) => {
                    assert!(reason.contains("outbound_private"), "{refused}: {reason}")
                }
                other => panic!("{refused}: {other:?}"),
            }
        }
        assert!(guarded.check_url("https://example.com/hook").is_ok());
        assert!(guarded.check_url("http://93.184.215.14/").is_ok());
        // Off: the same literals pass (a server on loopback only, by default).
        assert!(rules("", "").check_url("http://127.0.0.1/").is_ok());
        // A network the allow list names is allowed through the guard; the deny list wins.
        let allowing = rules("10.0.0.0/8,127.0.0.1", "10.9.0.0/16").refusing_private(true);
        assert!(allowing.check_url("http://10.1.2.3/").is_ok());
        assert!(allowing.check_url("http://127.0.0.1:5000/").is_ok());
        assert!(allowing.check_url("http://10.9.0.1/").is_err());
    }

    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        use reqwest::dns::Resolve;
        static HOSTS: &[(&str, &[&str])] = &[
            ("public.test", &["93.184.215.14"]),
            ("loopback.test", &["127.0.0.1", "::1"]),
            ("mixed.test", &["10.0.0.5", "93.184.215.14"]),
            ("metadata.test", &["169.254.169.254"]),
            ("internal.corp", &["10.0.0.7"]),
        ];
        let guarded = rules(
            "internal.corp,public.test,loopback.test,mixed.test,metadata.test",
            "169.254.0.0/16",
        )
        .refusing_private(true);
        let lookup = table(HOSTS);
        // Named in the allow list: trusted to resolve to private addresses...
        assert!(guarded
            .check_url_resolved("http://internal.corp/", &lookup)
            .await
            .is_ok());
        // ...but never into the deny list.
        assert!(guarded
            .check_url_resolved("http://metadata.test/", &lookup)
            .await
            .is_err());
        let unnamed = rules("", "").refusing_private(true);
        let refused = unnamed
            .check_url_resolved("http://loopback.test:8080/hook", &lookup)
            .await;
        match refused {
            Err(TargetError::NotAllowed(reason)) => assert!(
                reason.contains("loopback.test") && reason.contains("127.0.0.1"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(unnamed
            .check_url_resolved("http://public.test/", &lookup)
            .await
            .is_ok());
        assert!(unnamed
            .check_url_resolved("http://nowhere.test/", &lookup)
            .await
            .is_err());

        // At connect time the resolver hands out only the allowed addresses of an answer, so
        // a name that re-binds to loopback after its check is never connected to.
        let resolver = GuardedResolver::new(unnamed.clone(), lookup.clone());
        let name = |n: &str| n.parse::<reqwest::dns::Name>().expect("a name");
        let mixed: Vec<SocketAddr> = resolver
            .resolve(name("mixed.test"))
            .await
            .expect("one usable address")
            .collect();
        assert_eq!(mixed, [SocketAddr::from(([93, 184, 215, 14], 0))]);
        let error = resolver
            .resolve(name("loopback.test"))
            .await
            .err()
            .expect("refused");
        assert!(error.to_string().contains("refused addresses"), "{error}");
    }

    #[tokio::test]
    async fn the_client_never_connects_to_a_name_that_resolves_to_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        static HOSTS: &[(&str, &[&str])] = &[("rebound.test", &["127.0.0.1"])];
        let guarded = rules("", "").refusing_private(true);
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(guarded, table(HOSTS))))
            .build()
            .expect("client");
        let result = client
            .post(format!("http://rebound.test:{port}/hook"))
            .send()
            .await;
        let error = result.expect_err("refused");
        assert!(error.is_connect(), "{error:?}");
        // Nothing reached the listener.
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "a connection was made");
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
