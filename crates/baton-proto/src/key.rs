//! API keys (`/v1/keys`): what a key may do, the answer that shows a new key's secret once,
//! and the record the server keeps (the secret's hash, never the secret).

use serde::{Deserialize, Serialize};

/// What a permission allows. `receive` includes ack, nack and visibility changes; `manage`
/// creating, configuring, purging, deleting and redriving; `admin` keys and the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    Send,
    Receive,
    Manage,
    Admin,
}

impl KeyAction {
    pub const ALL: [KeyAction; 4] = [
        KeyAction::Send,
        KeyAction::Receive,
        KeyAction::Manage,
        KeyAction::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyAction::Send => "send",
            KeyAction::Receive => "receive",
            KeyAction::Manage => "manage",
            KeyAction::Admin => "admin",
        }
    }
}

/// `actions` on every resource matching one of `resources` (`queue:orders*`, `stream:chat`,
/// `topic:*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPermission {
    pub actions: Vec<KeyAction>,
    pub resources: Vec<String>,
}

/// `POST /v1/keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub name: String,
    pub permissions: Vec<KeyPermission>,
    /// Milliseconds since the Unix epoch; the key is refused from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Also give the key SQS credentials (an access key id and a secret access key) for
    /// AWS Signature Version 4 on the SQS API.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sqs: bool,
}

/// The answer to `POST /v1/keys`: the only time the secret `key` is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatedKey {
    pub name: String,
    /// The bearer token: `Authorization: Bearer <key>`.
    pub key: String,
    pub permissions: Vec<KeyPermission>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// The SQS access key id (`aws_access_key_id`), for a key created with `sqs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The SQS secret access key (`aws_secret_access_key`): shown here only, never again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
}

/// A key as listed and shown: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    pub name: String,
    pub permissions: Vec<KeyPermission>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    /// True once `expires_at` has passed.
    pub expired: bool,
    /// The SQS access key id, for a key with SQS credentials (never the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

/// `GET /v1/keys`, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// What the server stores per key (in its internal queue's metadata): the SHA-256 of the
/// bearer token in hex, never the token; and, for a key with SQS credentials, the SQS secret
/// itself (SigV4 signatures are HMACs keyed by the secret, which no hash can verify).
/// `version` is this record's format; records written before SQS credentials existed have no
/// `sqs` and still load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    pub version: u32,
    pub name: String,
    pub sha256: String,
    pub permissions: Vec<KeyPermission>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqs: Option<StoredSqsCredentials>,
}

/// A key's SQS credentials as stored. `Debug` leaves the secret out, so no log shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredSqsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StoredSqsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSqsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// `POST /v1/tickets`: a short-lived ticket for the caller's key, for browsers' `EventSource`
/// and `WebSocket`, which cannot send an `Authorization` header: `?ticket=` on a `GET`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    /// How long the ticket may open streams, in ms: 1000..=300000, default 60000. A stream
    /// opened with it lasts as long as the key stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// The answer to `POST /v1/tickets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ticket {
    /// `bt_...`; `None` on a server without keys (nothing needs one).
    pub ticket: Option<String>,
    /// The key it acts as.
    pub key: Option<String>,
    /// Until when it opens streams (ms since the Unix epoch).
    pub expires_at: Option<u64>,
}
