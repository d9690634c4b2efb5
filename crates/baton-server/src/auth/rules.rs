//! The pure rules of API keys: the token format, the stored hash, resource patterns and
//! permission checks. No I/O, no clock, no randomness (the random bytes and `now` come in).
//!
//! Invariants:
//! - A resource is `<kind>:<name>` (`queue:orders`) or `server`; a pattern is a resource, a
//!   resource prefix ending in `*` (`queue:orders*`, `topic:*`), or `*` alone. `*` is allowed
//!   only at the end, so "covers every lock" is the check of the literal resource `lock:*`.
//! - Internal queues (`queue:_baton-...`) are reached only through a permission that includes
//!   `admin`: `queue:*` with `send` does not reach Baton's own queues (keys live in them).

use baton_proto::{KeyAction, KeyPermission};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every generated key starts with, so a leaked one is recognisable (secret scanners).
pub const TOKEN_PREFIX: &str = "bk_";
/// Random bytes in a generated key.
pub const TOKEN_RANDOM_BYTES: usize = 32;
/// Bounds of a token given by the operator (`BATON_ADMIN_KEY`): the hash is unsalted, so a
/// token must be long enough to be unguessable.
pub const TOKEN_CHARS_MIN: usize = 32;
pub const TOKEN_CHARS_MAX: usize = 256;
/// Longest key name: its internal queue `_baton-key-<name>` must be a valid queue name.
pub const KEY_NAME_CHARS_MAX: usize = 80 - KEY_QUEUE_PREFIX.len();
/// The internal queue holding one key's record.
pub const KEY_QUEUE_PREFIX: &str = "_baton-key-";
/// Resource kinds a pattern may name.
pub const KINDS: [&str; 7] = [
    "queue", "stream", "topic", "lock", "sink", "schedule", "key",
];
/// The resource of server-wide operations (`/v1/server`, `/metrics`, failed callbacks).
pub const SERVER_RESOURCE: &str = "server";
/// Most permissions in one key, and resources in one permission.
pub const PERMISSIONS_MAX: usize = 64;
pub const RESOURCES_MAX: usize = 64;

/// A new key's token from `random` bytes: `bk_` and the bytes in unpadded base64url.
pub fn token_from(random: &[u8; TOKEN_RANDOM_BYTES]) -> String {
    use base64::Engine as _;
    let mut token = String::from(TOKEN_PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(random, &mut token);
    token
}

/// What every SQS access key id starts with (as AWS's `AKIA`), then 16 upper-case base32
/// characters: 20 characters of `[A-Z2-7]`, the shape the AWS SDKs expect.
pub const ACCESS_KEY_PREFIX: &str = "BKIA";
/// Random bytes in an access key id (16 base32 characters) and in an SQS secret (40 base64
/// characters, the length of AWS's secret access keys).
pub const ACCESS_KEY_RANDOM_BYTES: usize = 10;
pub const SQS_SECRET_RANDOM_BYTES: usize = 30;

/// An SQS access key id from `random` bytes: `BKIA` and 16 characters of RFC 4648 base32.
pub fn access_key_id_from(random: &[u8; ACCESS_KEY_RANDOM_BYTES]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from(ACCESS_KEY_PREFIX);
    // 80 bits, 5 at a time, most significant first.
    let bits = random
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    for i in (0..16).rev() {
        id.push(ALPHABET[((bits >> (i * 5)) & 31) as usize] as char);
    }
    id
}

/// An SQS secret access key from `random` bytes: 40 characters of standard base64 (no
/// padding is needed for 30 bytes), like AWS's.
pub fn sqs_secret_from(random: &[u8; SQS_SECRET_RANDOM_BYTES]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// Why a token given by the operator cannot be used, if it cannot.
pub fn check_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if !(TOKEN_CHARS_MIN..=TOKEN_CHARS_MAX).contains(&chars) {
        return Err(format!(
            "a key must have {TOKEN_CHARS_MIN} to {TOKEN_CHARS_MAX} characters (it has {chars}); \
             e.g. `openssl rand -hex 32`"
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err("a key may hold only visible ASCII characters (no spaces)".to_string());
    }
    Ok(())
}

/// The SHA-256 of a token: what is stored and looked up. A plain hash suffices for tokens
/// of 256 random bits (no dictionary to try); it is not a password hash.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hash_hex(hash: &[u8; 32]) -> String {
    hex::encode(hash)
}

pub fn hash_from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Compares two hashes in constant time.
pub fn same_hash(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

/// The token of an `Authorization` header value: `Bearer <token>` (scheme case-insensitive).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why a key name is not allowed, if it is not.
pub fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > KEY_NAME_CHARS_MAX {
        return Err(format!(
            "a key name has 1 to {KEY_NAME_CHARS_MAX} characters (it has {chars})"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("a key name may hold only A-Z, a-z, 0-9, `-` and `_`".to_string());
    }
    Ok(())
}

/// A checked resource pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The text before the `*` (or all of it).
    prefix: String,
    wildcard: bool,
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let (prefix, wildcard) = match text.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (text, false),
        };
        if prefix.contains('*') {
            return Err(format!(
                "resource pattern {text:?}: `*` may only end a pattern (`queue:orders*`)"
            ));
        }
        if prefix.is_empty() && wildcard {
            return Ok(Pattern {
                prefix: String::new(),
                wildcard,
            });
        }
        if prefix == SERVER_RESOURCE && !wildcard {
            return Ok(Pattern {
                prefix: prefix.to_string(),
                wildcard,
            });
        }
        let Some((kind, name)) = prefix.split_once(':') else {
            return Err(format!(
                "resource pattern {text:?} is not `<kind>:<name>`, `<kind>:<prefix>*`, `server` or `*` (kinds: {})",
                KINDS.join(", ")
            ));
        };
        if !KINDS.contains(&kind) {
            return Err(format!(
                "resource pattern {text:?}: unknown kind `{kind}` (kinds: {})",
                KINDS.join(", ")
            ));
        }
        if name.is_empty() && !wildcard {
            return Err(format!(
                "resource pattern {text:?} names nothing: add a name or `*`"
            ));
        }
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "resource pattern {text:?} holds a space or control character"
            ));
        }
        Ok(Pattern {
            prefix: prefix.to_string(),
            wildcard,
        })
    }

    pub fn matches(&self, resource: &str) -> bool {
        if self.wildcard {
            resource.starts_with(&self.prefix)
        } else {
            resource == self.prefix
        }
    }
}

/// Whether `resource` is one of Baton's internal queues.
fn is_internal(resource: &str) -> bool {
    resource.starts_with("queue:_baton-")
}

/// A key's checked permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    rules: Vec<(Vec<KeyAction>, Vec<Pattern>)>,
}

impl Grants {
    /// Checks `permissions` as a key's (at least one, every pattern valid, every list bounded
    /// and non-empty).
    pub fn parse(permissions: &[KeyPermission]) -> Result<Grants, String> {
        if permissions.is_empty() {
            return Err("a key needs at least one permission".to_string());
        }
        if permissions.len() > PERMISSIONS_MAX {
            return Err(format!("a key has at most {PERMISSIONS_MAX} permissions"));
        }
        let mut rules = Vec::with_capacity(permissions.len());
        for (i, permission) in permissions.iter().enumerate() {
            if permission.actions.is_empty() {
                return Err(format!("permissions[{i}].actions is empty"));
            }
            if permission.resources.is_empty() || permission.resources.len() > RESOURCES_MAX {
                return Err(format!(
                    "permissions[{i}].resources must hold 1 to {RESOURCES_MAX} patterns"
                ));
            }
            let patterns = permission
                .resources
                .iter()
                .map(|text| Pattern::parse(text).map_err(|e| format!("permissions[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push((permission.actions.clone(), patterns));
        }
        Ok(Grants { rules })
    }

    /// Whether the key may do `action` on `resource`.
    pub fn allows(&self, action: KeyAction, resource: &str) -> bool {
        let needed = if is_internal(resource) {
            KeyAction::Admin
        } else {
            action
        };
        self.rules.iter().any(|(actions, patterns)| {
            actions.contains(&needed) && patterns.iter().any(|p| p.matches(resource))
        })
    }

    /// Whether the key may do anything at all with `resource` (to see it in a listing, or
    /// read its description).
    pub fn sees(&self, resource: &str) -> bool {
        KeyAction::ALL
            .iter()
            .any(|action| self.allows(*action, resource))
    }
}

/// Whether a key that expires at `expires_at` is expired at `now` (both ms).
pub fn expired(expires_at: Option<u64>, now: u64) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

/// The permission of an administrator key (`baton key create --admin`, `BATON_ADMIN_KEY`).
pub fn admin_permissions() -> Vec<KeyPermission> {
    vec![KeyPermission {
        actions: KeyAction::ALL.to_vec(),
        resources: vec!["*".to_string()],
    }]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn grants(actions: &[KeyAction], resources: &[&str]) -> Grants {
        Grants::parse(&[KeyPermission {
            actions: actions.to_vec(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
        }])
        .unwrap()
    }

    #[test]
    fn tokens_are_prefixed_base64url_of_32_bytes() {
        let token = token_from(&[0xff; 32]);
        assert!(token.starts_with("bk_"));
        assert_eq!(token.len(), 3 + 43);
        assert!(token[3..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(token_from(&[0; 32]), token_from(&[1; 32]));
        assert!(check_token(&token).is_ok());
    }

    #[test]
    fn sqs_credentials_have_the_aws_shapes() {
        let id = access_key_id_from(&[0xa5; ACCESS_KEY_RANDOM_BYTES]);
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("BKIA"), "{id}");
        assert!(id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_eq!(access_key_id_from(&[0; 10]), "BKIAAAAAAAAAAAAAAAAA");
        assert_eq!(access_key_id_from(&[0xff; 10]), "BKIA7777777777777777");
        assert_ne!(access_key_id_from(&[0; 10]), access_key_id_from(&[1; 10]));
        let secret = sqs_secret_from(&[0x3c; SQS_SECRET_RANDOM_BYTES]);
        assert_eq!(secret.len(), 40);
        assert!(secret.is_ascii() && !secret.contains('='));
    }

    #[test]
    fn operator_tokens_must_be_long_and_visible() {
        assert!(check_token("short").is_err());
        assert!(check_token(&"a".repeat(31)).is_err());
        assert!(check_token(&"a".repeat(32)).is_ok());
        assert!(check_token(&format!("{} b", "a".repeat(40))).is_err());
        assert!(check_token(&"a".repeat(257)).is_err());
    }

    #[test]
    fn hashes_round_trip_through_hex_and_compare() {
        let h = hash("bk_secret");
        let hex = hash_hex(&h);
        assert_eq!(hex.len(), 64);
        assert_eq!(hash_from_hex(&hex), Some(h));
        assert!(same_hash(&h, &hash("bk_secret")));
        assert!(!same_hash(&h, &hash("bk_secreT")));
        assert_eq!(hash_from_hex("zz"), None);
        assert_eq!(hash_from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn names() {
        assert!(check_name("admin").is_ok());
        assert!(check_name("ci_deploy-2").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(KEY_NAME_CHARS_MAX)).is_ok());
        assert!(check_name(&"a".repeat(KEY_NAME_CHARS_MAX + 1)).is_err());
    }

    #[test]
    fn patterns_parse_and_match() {
        let p = Pattern::parse("queue:orders*").unwrap();
        assert!(p.matches("queue:orders"));
        assert!(p.matches("queue:orders-eu"));
        assert!(!p.matches("queue:payments"));
        assert!(!p.matches("stream:orders"));
        let exact = Pattern::parse("stream:chat").unwrap();
        assert!(exact.matches("stream:chat"));
        assert!(!exact.matches("stream:chat2"));
        let all = Pattern::parse("*").unwrap();
        assert!(all.matches("queue:x") && all.matches("server"));
        assert!(Pattern::parse("server").unwrap().matches("server"));
        assert!(Pattern::parse("topic:*").unwrap().matches("topic:a"));
        for bad in [
            "queue:*x",
            "q*ueue:x",
            "bucket:x",
            "orders",
            "queue:",
            "queue:a b",
            "server*",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants_check_action_and_resource() {
        let g = grants(&[KeyAction::Send], &["queue:orders*"]);
        assert!(g.allows(KeyAction::Send, "queue:orders-eu"));
        assert!(!g.allows(KeyAction::Send, "queue:payments"));
        assert!(!g.allows(KeyAction::Receive, "queue:orders-eu"));
        assert!(g.sees("queue:orders"));
        assert!(!g.sees("queue:payments"));
        // "Covers every lock" is the literal resource `lock:*`.
        assert!(grants(&[KeyAction::Send], &["lock:*"]).allows(KeyAction::Send, "lock:*"));
        assert!(!grants(&[KeyAction::Send], &["lock:a*"]).allows(KeyAction::Send, "lock:*"));
    }

    #[test]
    fn internal_queues_need_admin() {
        let user = grants(&[KeyAction::Send, KeyAction::Manage], &["*"]);
        assert!(user.allows(KeyAction::Manage, "queue:orders"));
        assert!(!user.allows(KeyAction::Manage, "queue:_baton-key-admin"));
        assert!(!user.sees("queue:_baton-callbacks"));
        let admin = Grants::parse(&admin_permissions()).unwrap();
        assert!(admin.allows(KeyAction::Manage, "queue:_baton-callbacks"));
        assert!(admin.allows(KeyAction::Admin, "key:anyone"));
    }

    #[test]
    fn permissions_are_checked_whole() {
        assert!(Grants::parse(&[]).is_err());
        let empty_actions = KeyPermission {
            actions: vec![],
            resources: vec!["*".into()],
        };
        assert!(Grants::parse(&[empty_actions]).is_err());
        let empty_resources = KeyPermission {
            actions: vec![KeyAction::Send],
            resources: vec![],
        };
        assert!(Grants::parse(&[empty_resources]).is_err());
        let bad = KeyPermission {
            actions: vec![KeyAction::Send],
            resources: vec!["queue:ok".into(), "nope".into()],
        };
        let error = Grants::parse(&[bad]).unwrap_err();
        assert!(
            error.contains("permissions[0]") && error.contains("nope"),
            "{error}"
        );
    }

    #[test]
    fn expiry() {
        assert!(!expired(None, u64::MAX));
        assert!(!expired(Some(10), 9));
        assert!(expired(Some(10), 10));
    }
}
