//! Who may do what: API keys (bearer tokens stored as hashes, durable in the engine; optionally
//! SQS credentials for AWS Signature Version 4) with permissions on resource patterns, checked
//! in front of every HTTP route, and per action on the SQS API.
//!
//! - `rules`: the pure rules (token and SQS credential formats, hashes, patterns, permission
//!   checks).
//! - `routes`: the one table of which permission each route needs.
//! - `store`: the keys, durable in internal queues and cached.
//! - `middleware`: the check itself, and the framed protocol's refusal.
//! - `sigv4`: AWS Signature Version 4, pure (applied by `api::sqs`, which reads the body).
//! - `secure_default`: the refusal to listen beyond loopback without keys.
//!
//! The framed protocol authenticates in the protocol (an auth frame, `wire`), checked per
//! request by `middleware::wire_access`; rate limits are `crate::rate_limits`.

pub mod audit;
pub mod middleware;
pub mod offline;
pub mod routes;
pub mod rules;
pub mod sigv4;
pub mod store;
pub mod tickets;

pub use middleware::Caller;
pub use store::{KeyEntry, KeyStore, Mode};

use std::net::SocketAddr;

/// The name of the key `BATON_ADMIN_KEY` installs.
pub const ADMIN_KEY_NAME: &str = "admin";

/// Why the server must not start: it listens beyond loopback on `addresses` while no key
/// exists and `insecure` is not set.
pub fn secure_default(
    addresses: &[SocketAddr],
    has_keys: bool,
    insecure: bool,
) -> Result<(), String> {
    if has_keys || insecure {
        return Ok(());
    }
    let Some(open) = addresses.iter().find(|a| !a.ip().is_loopback()) else {
        return Ok(());
    };
    Err(format!(
        "Baton listens on {open}, which other machines can reach, and no API key exists: anyone \
         could use this broker. Create an admin key first, then start again: with the broker \
         stopped, `baton key create --data-dir <data dir> --name admin --admin` (prints the key), \
         or set BATON_ADMIN_KEY=<a secret of 32 or more characters> in `baton serve`'s \
         environment. Or listen on 127.0.0.1, or pass --insecure (insecure = true) to run \
         without keys on purpose."
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_non_loopback_without_keys_is_refused() {
        let local: SocketAddr = "127.0.0.1:9324".parse().unwrap();
        let local6: SocketAddr = "[::1]:9324".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9324".parse().unwrap();
        assert!(secure_default(&[local, local6], false, false).is_ok());
        let error = secure_default(&[local, any], false, false).unwrap_err();
        assert!(
            error.contains("0.0.0.0:9324") && error.contains("baton key create"),
            "{error}"
        );
        assert!(secure_default(&[any], true, false).is_ok());
        assert!(secure_default(&[any], false, true).is_ok());
    }
}
