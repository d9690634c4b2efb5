//! Tickets: short-lived proofs of a key for browsers, whose `EventSource` and `WebSocket`
//! cannot send `Authorization`. A key asks `POST /v1/tickets` for one and opens a live stream
//! with `?ticket=` (GET requests only); the key itself never appears in a URL.
//!
//! A ticket is `bt_` and, in base64url, `expires_at` (u64, big-endian), the first 16 bytes of
//! HMAC-SHA256(the key's token hash, "baton-ticket" ‖ expires_at ‖ name), and the key's name.
//! The MAC key is the token's SHA-256, which every node sharing the engine holds (the keys'
//! records) and nobody outside it: any node checks a ticket another issued, nothing is
//! stored, and revoking the key (or replacing it) invalidates its tickets at once.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::store::{KeyEntry, KeyStore};
use crate::service::ServiceError;

pub const TICKET_PREFIX: &str = "bt_";
/// A ticket's lifetime unless asked otherwise, and the range one may ask for.
pub const TTL_MS_DEFAULT: u64 = 60_000;
pub const TTL_MS_MIN: u64 = 1_000;
pub const TTL_MS_MAX: u64 = 300_000;
const MAC_BYTES: usize = 16;

fn mac(key: &KeyEntry, expires_at: u64) -> [u8; MAC_BYTES] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.hash).expect("HMAC takes keys of any length");
    mac.update(b"baton-ticket");
    mac.update(&expires_at.to_be_bytes());
    mac.update(key.name.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0; MAC_BYTES];
    out.copy_from_slice(&full[..MAC_BYTES]);
    out
}

/// A ticket for `key` valid until `expires_at` (ms since the epoch).
pub fn issue(key: &KeyEntry, expires_at: u64) -> String {
    let mut raw = Vec::with_capacity(8 + MAC_BYTES + key.name.len());
    raw.extend_from_slice(&expires_at.to_be_bytes());
    raw.extend_from_slice(&mac(key, expires_at));
    raw.extend_from_slice(key.name.as_bytes());
    format!("{TICKET_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

fn invalid(reason: &str) -> ServiceError {
    ServiceError::Unauthorized {
        reason: format!("the ticket is not valid: {reason}"),
    }
}

/// The key a ticket proves, if it is valid now (its key not revoked or expired either).
pub fn verify(keys: &KeyStore, ticket: &str) -> Result<Arc<KeyEntry>, ServiceError> {
    let raw = ticket
        .strip_prefix(TICKET_PREFIX)
        .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
        .filter(|raw| raw.len() > 8 + MAC_BYTES)
        .ok_or_else(|| invalid("not a ticket of this server"))?;
    let (expiry, rest) = raw.split_at(8);
    let (given, name) = rest.split_at(MAC_BYTES);
    let expires_at = u64::from_be_bytes(expiry.try_into().expect("8 bytes"));
    let name = std::str::from_utf8(name).map_err(|_| invalid("not a ticket of this server"))?;
    let key = keys
        .by_name(name)
        .ok_or_else(|| invalid("its key does not exist (revoked?)"))?;
    if !bool::from(mac(&key, expires_at).ct_eq(given)) {
        return Err(invalid("not a ticket of this key"));
    }
    if keys.now() >= expires_at {
        return Err(invalid(&format!(
            "it expired at {expires_at} ms since the epoch; ask POST /v1/tickets for a new one"
        )));
    }
    keys.still_valid(&key)?;
    Ok(key)
}

/// Takes the `ticket` parameter out of a query string: the ticket, and the query without it
/// (`None` when nothing is left).
pub fn take_from_query(query: &str) -> Option<(String, Option<String>)> {
    let mut ticket = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut kept = 0;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if name == "ticket" && ticket.is_none() {
            ticket = Some(value.into_owned());
        } else {
            rest.append_pair(&name, &value);
            kept += 1;
        }
    }
    let ticket = ticket?;
    Some((ticket, (kept > 0).then(|| rest.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_parameter_is_taken_out_of_the_query() {
        assert_eq!(
            take_from_query("partition=1&ticket=bt_abc&from_offset=5"),
            Some((
                "bt_abc".to_string(),
                Some("partition=1&from_offset=5".to_string())
            ))
        );
        assert_eq!(
            take_from_query("ticket=bt_x"),
            Some(("bt_x".to_string(), None))
        );
        assert_eq!(take_from_query("pattern=a.*"), None);
    }
}
