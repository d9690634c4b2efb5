//! The API keys of a server: durable in the engine, cached in memory for every request.
//!
//! Durable form: each key has an internal queue `_baton-key-<name>` whose metadata attribute
//! [`KEY_ATTRIBUTE`] holds its [`StoredKey`] (the bearer token's SHA-256, never the token; for a
//! key with SQS credentials also the SQS secret, which SigV4 needs in the clear), written
//! with one `Engine::update_queue_meta` (compare-and-set on creation, so two nodes cannot both
//! create one name); revoking deletes the queue. Every node sharing the engine sees the same
//! keys: the cache is loaded after recovery, changed by this node's API calls, and re-read
//! every `keys_refresh_ms` to pick up other nodes' changes (a revoke elsewhere takes effect
//! here within that time).
//!
//! Invariants:
//! - Until [`KeyStore::activate`] (after recovery, the start-up key and the secure-default
//!   check) the mode is `Loading` and every guarded request answers 503: there is no moment
//!   in which a server with keys is open.
//! - A key queue whose record cannot be read still counts as "a key exists" (enforcement
//!   stays on) but authenticates nobody: a damaged record never opens the server.
//! - Changes and re-reads are serialized by one async mutex, so a re-read that began before
//!   a change cannot put back what the change removed.
//! - An SQS secret leaves the store only in the answer that creates it and as the HMAC key of
//!   a signature check ([`SqsCredentials::secret`]); `Debug`, listings and logs never show it.
//!   Revoking a key removes its SQS credentials with it (one entry, one cache removal).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use baton_core::{QueueConfig, QueueName};
use baton_engine::{Created, Engine, EngineError, MetaPatch};
use baton_proto::{self as proto, KeyAction, StoredKey, StoredSqsCredentials};

use super::rules::{self, Grants, KEY_QUEUE_PREFIX};
use crate::service::ServiceError;

/// The key queue's metadata attribute holding its `StoredKey` as JSON.
pub const KEY_ATTRIBUTE: &str = "baton.key";
/// The format of `StoredKey` this version writes.
const STORED_VERSION: u32 = 1;

/// A key's SQS credentials. `Debug` shows the id only.
pub struct SqsCredentials {
    pub access_key_id: String,
    secret: String,
}

impl SqsCredentials {
    /// The secret access key: only for computing a SigV4 signing key.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    fn stored(&self) -> StoredSqsCredentials {
        StoredSqsCredentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret.clone(),
        }
    }
}

impl std::fmt::Debug for SqsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One key, checked.
#[derive(Debug)]
pub struct KeyEntry {
    pub name: String,
    pub(super) hash: [u8; 32],
    pub grants: Grants,
    pub permissions: Vec<proto::KeyPermission>,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub sqs: Option<SqsCredentials>,
    /// Cancelled when the key is revoked (here, or seen gone on a re-read): live streams
    /// opened with it end then.
    revoked: tokio_util::sync::CancellationToken,
}

impl KeyEntry {
    fn from_stored(stored: StoredKey) -> Result<KeyEntry, String> {
        rules::check_name(&stored.name)?;
        let hash = rules::hash_from_hex(&stored.sha256).ok_or("the hash is not 64 hex digits")?;
        let sqs = match stored.sqs {
            Some(sqs) if sqs.access_key_id.is_empty() || sqs.secret_access_key.is_empty() => {
                return Err("the SQS credentials are empty".to_string())
            }
            Some(sqs) => Some(SqsCredentials {
                access_key_id: sqs.access_key_id,
                secret: sqs.secret_access_key,
            }),
            None => None,
        };
        Ok(KeyEntry {
            sqs,
            grants: Grants::parse(&stored.permissions)?,
            name: stored.name,
            hash,
            permissions: stored.permissions,
            created_at: stored.created_at,
            expires_at: stored.expires_at,
            revoked: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// Completes when the key stops being valid: revoked, replaced, or expired (by the
    /// system clock, which the engine's is in a server). For ending live streams.
    pub fn ended(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let revoked = self.revoked.clone().cancelled_owned();
        let expires_at = self.expires_at;
        async move {
            let expiry = async move {
                match expires_at {
                    Some(at) => {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64);
                        tokio::time::sleep(std::time::Duration::from_millis(
                            at.saturating_sub(now),
                        ))
                        .await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = revoked => {}
                () = expiry => {}
            }
        }
    }

    fn info(&self, now: u64) -> proto::KeyInfo {
        proto::KeyInfo {
            name: self.name.clone(),
            permissions: self.permissions.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            expired: rules::expired(self.expires_at, now),
            access_key_id: self.sqs.as_ref().map(|c| c.access_key_id.clone()),
        }
    }

    fn is_key_admin(&self, now: u64) -> bool {
        !rules::expired(self.expires_at, now) && self.grants.allows(KeyAction::Admin, "key:*")
    }
}

/// Whether requests are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys not loaded yet: guarded requests answer 503.
    Loading,
    /// No key exists: everything is open (on loopback, or with `insecure`).
    Open,
    /// At least one key exists: every guarded request needs one.
    Enforced,
}

#[derive(Default)]
struct Cache {
    by_hash: HashMap<[u8; 32], Arc<KeyEntry>>,
    by_name: BTreeMap<String, Arc<KeyEntry>>,
    /// Keys with SQS credentials, by access key id (not a secret: a plain lookup).
    by_access_key: HashMap<String, Arc<KeyEntry>>,
    /// Key queues whose record could not be read.
    broken: usize,
}

impl Cache {
    fn enforced(&self) -> bool {
        !self.by_name.is_empty() || self.broken > 0
    }

    fn insert(&mut self, entry: KeyEntry) {
        let entry = Arc::new(entry);
        if let Some(old) = self.by_name.insert(entry.name.clone(), entry.clone()) {
            self.forget(&old);
            if !rules::same_hash(&old.hash, &entry.hash) {
                old.revoked.cancel();
            }
        }
        if let Some(sqs) = &entry.sqs {
            self.by_access_key
                .insert(sqs.access_key_id.clone(), entry.clone());
        }
        self.by_hash.insert(entry.hash, entry);
    }

    fn remove(&mut self, name: &str) {
        if let Some(old) = self.by_name.remove(name) {
            self.forget(&old);
            old.revoked.cancel();
        }
    }

    /// Drops the other indexes' entries of `old` (replaced or revoked).
    fn forget(&mut self, old: &KeyEntry) {
        self.by_hash.remove(&old.hash);
        if let Some(sqs) = &old.sqs {
            self.by_access_key.remove(&sqs.access_key_id);
        }
    }
}

pub struct KeyStore {
    engine: Arc<dyn Engine>,
    keys_max: u32,
    mode: AtomicU8,
    cache: parking_lot::RwLock<Cache>,
    changes: tokio::sync::Mutex<()>,
}

const LOADING: u8 = 0;
const OPEN: u8 = 1;
const ENFORCED: u8 = 2;

fn key_queue(name: &str) -> Result<QueueName, ServiceError> {
    QueueName::new(&format!("{KEY_QUEUE_PREFIX}{name}"))
        .map_err(|e| ServiceError::Internal(format!("key queue name: {e}")))
}

impl KeyStore {
    pub fn new(engine: Arc<dyn Engine>, keys_max: u32) -> Self {
        KeyStore {
            engine,
            keys_max,
            mode: AtomicU8::new(LOADING),
            cache: parking_lot::RwLock::new(Cache::default()),
            changes: tokio::sync::Mutex::new(()),
        }
    }

    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Acquire) {
            LOADING => Mode::Loading,
            OPEN => Mode::Open,
            _ => Mode::Enforced,
        }
    }

    fn set_mode(&self, cache: &Cache) {
        if self.mode() != Mode::Loading {
            let mode = if cache.enforced() { ENFORCED } else { OPEN };
            self.mode.store(mode, Ordering::Release);
        }
    }

    /// Ends `Loading`: requests are served (open or checked, as the keys say) from now on.
    pub fn activate(&self) {
        let enforced = self.cache.read().enforced();
        let mode = if enforced { ENFORCED } else { OPEN };
        self.mode.store(mode, Ordering::Release);
    }

    /// Whether any key exists (a damaged record counts).
    pub fn has_keys(&self) -> bool {
        self.cache.read().enforced()
    }

    pub(super) fn now(&self) -> u64 {
        self.engine.now().as_millis()
    }

    /// The key whose token this is, if it is valid now.
    pub fn authenticate(&self, token: &str) -> Result<Arc<KeyEntry>, ServiceError> {
        let hash = rules::hash(token);
        let found = self.cache.read().by_hash.get(&hash).cloned();
        // The map finds the entry by the hash; the constant-time comparison is the check.
        let entry = found
            .filter(|entry| rules::same_hash(&entry.hash, &hash))
            .ok_or_else(|| ServiceError::Unauthorized {
                reason: "the API key is not valid (unknown or revoked)".to_string(),
            })?;
        if rules::expired(entry.expires_at, self.now()) {
            return Err(ServiceError::Unauthorized {
                reason: format!(
                    "the API key `{}` expired at {} ms since the epoch",
                    entry.name,
                    entry.expires_at.unwrap_or_default()
                ),
            });
        }
        Ok(entry)
    }

    /// The key named `name`, if it exists.
    pub fn by_name(&self, name: &str) -> Option<Arc<KeyEntry>> {
        self.cache.read().by_name.get(name).cloned()
    }

    /// Whether `key`, authenticated earlier (a framed-protocol connection's), is still valid:
    /// not revoked, not replaced by a new key of its name, not expired.
    pub fn still_valid(&self, key: &Arc<KeyEntry>) -> Result<(), ServiceError> {
        let current = self
            .cache
            .read()
            .by_name
            .get(&key.name)
            // By the token's hash: the cache's entries are rebuilt on every re-read.
            .is_some_and(|entry| rules::same_hash(&entry.hash, &key.hash));
        if !current {
            return Err(ServiceError::Unauthorized {
                reason: format!("the API key `{}` was revoked", key.name),
            });
        }
        if rules::expired(key.expires_at, self.now()) {
            return Err(ServiceError::Unauthorized {
                reason: format!(
                    "the API key `{}` expired at {} ms since the epoch",
                    key.name,
                    key.expires_at.unwrap_or_default()
                ),
            });
        }
        Ok(())
    }

    /// The key whose SQS access key id this is, expired or not (the SigV4 check tells an
    /// unknown id from an expired key, as AWS does): `None` for an unknown or revoked id.
    pub fn sqs_key(&self, access_key_id: &str) -> Option<Arc<KeyEntry>> {
        self.cache.read().by_access_key.get(access_key_id).cloned()
    }

    /// Whether a key that expires at `expires_at` is expired now (the engine's clock).
    pub fn is_expired(&self, expires_at: Option<u64>) -> bool {
        rules::expired(expires_at, self.now())
    }

    /// Reads every key from the engine into the cache (at start, and every `keys_refresh_ms`).
    pub async fn load(&self) -> Result<(), EngineError> {
        let _changes = self.changes.lock().await;
        let queues = self.engine.list_queues().await?;
        let mut cache = Cache::default();
        for view in queues {
            let Some(name) = view.name.as_str().strip_prefix(KEY_QUEUE_PREFIX) else {
                continue;
            };
            // A queue without a record is a creation cut short: no key.
            let Some(json) = view.meta.attributes.get(KEY_ATTRIBUTE) else {
                continue;
            };
            let parsed = serde_json::from_str::<StoredKey>(json)
                .map_err(|e| e.to_string())
                .and_then(KeyEntry::from_stored)
                .and_then(|entry| {
                    (entry.name == name)
                        .then_some(entry)
                        .ok_or_else(|| "the record names another key".to_string())
                });
            match parsed {
                Ok(mut entry) => {
                    // The same key as before keeps its token: its live streams go on.
                    let old = self.cache.read().by_name.get(&entry.name).cloned();
                    if let Some(old) = old.filter(|old| rules::same_hash(&old.hash, &entry.hash)) {
                        entry.revoked = old.revoked.clone();
                    }
                    cache.insert(entry)
                }
                Err(error) => {
                    tracing::error!(key = %name, %error, "stored API key is unreadable; it authenticates nobody, and keys stay required");
                    cache.broken += 1;
                }
            }
        }
        self.set_mode(&cache);
        let old = std::mem::replace(&mut *self.cache.write(), cache);
        // Keys gone (revoked on another node) or replaced end their live streams.
        let current = self.cache.read();
        for (name, entry) in &old.by_name {
            let kept = current
                .by_name
                .get(name)
                .is_some_and(|now| rules::same_hash(&now.hash, &entry.hash));
            if !kept {
                entry.revoked.cancel();
            }
        }
        Ok(())
    }

    /// Creates a key with a new random token; the answer is the only place the token appears.
    pub async fn create(
        &self,
        request: proto::CreateKey,
    ) -> Result<proto::CreatedKey, ServiceError> {
        let mut random = [0u8; rules::TOKEN_RANDOM_BYTES];
        getrandom::fill(&mut random)
            .map_err(|e| ServiceError::Internal(format!("no random bytes for a key: {e}")))?;
        let token = rules::token_from(&random);
        let now = self.now();
        if request.expires_at.is_some_and(|at| at <= now) {
            return Err(ServiceError::invalid(
                "expires_at",
                format!(
                    "{} is not in the future (now: {now})",
                    request.expires_at.unwrap_or_default()
                ),
            ));
        }
        let sqs = if request.sqs {
            let mut id = [0u8; rules::ACCESS_KEY_RANDOM_BYTES];
            let mut secret = [0u8; rules::SQS_SECRET_RANDOM_BYTES];
            getrandom::fill(&mut id)
                .and_then(|()| getrandom::fill(&mut secret))
                .map_err(|e| ServiceError::Internal(format!("no random bytes for a key: {e}")))?;
            Some(SqsCredentials {
                access_key_id: rules::access_key_id_from(&id),
                secret: rules::sqs_secret_from(&secret),
            })
        } else {
            None
        };
        let entry = self
            .put(
                &request.name,
                &token,
                request.permissions,
                request.expires_at,
                sqs,
                false,
            )
            .await?;
        Ok(proto::CreatedKey {
            name: entry.name.clone(),
            key: token,
            permissions: entry.permissions.clone(),
            created_at: entry.created_at,
            expires_at: entry.expires_at,
            access_key_id: entry.sqs.as_ref().map(|c| c.access_key_id.clone()),
            secret_access_key: entry.sqs.as_ref().map(|c| c.secret().to_string()),
        })
    }

    /// Installs `token` (given by the operator) as key `name`, replacing a key of that name
    /// whose token or permissions differ (`BATON_ADMIN_KEY` at every start).
    pub async fn install(
        &self,
        name: &str,
        token: &str,
        permissions: Vec<proto::KeyPermission>,
    ) -> Result<(), ServiceError> {
        rules::check_token(token).map_err(|reason| ServiceError::invalid("key", reason))?;
        let current = self.cache.read().by_name.get(name).cloned();
        if let Some(current) = current {
            let same = rules::same_hash(&current.hash, &rules::hash(token))
                && current.permissions == permissions
                && current.expires_at.is_none();
            if same {
                return Ok(());
            }
        }
        self.put(name, token, permissions, None, None, true)
            .await
            .map(|_| ())
    }

    /// Checks and stores a key; `replace`: overwrite a key of that name instead of refusing.
    async fn put(
        &self,
        name: &str,
        token: &str,
        permissions: Vec<proto::KeyPermission>,
        expires_at: Option<u64>,
        sqs: Option<SqsCredentials>,
        replace: bool,
    ) -> Result<Arc<KeyEntry>, ServiceError> {
        rules::check_name(name).map_err(|reason| ServiceError::invalid("name", reason))?;
        let grants = Grants::parse(&permissions)
            .map_err(|reason| ServiceError::invalid("permissions", reason))?;
        let _changes = self.changes.lock().await;
        {
            let cache = self.cache.read();
            if !replace && cache.by_name.contains_key(name) {
                return Err(ServiceError::KeyExists {
                    name: name.to_string(),
                });
            }
            if !cache.by_name.contains_key(name) && cache.by_name.len() >= self.keys_max as usize {
                return Err(ServiceError::TooManyKeys {
                    limit: self.keys_max,
                });
            }
        }
        let hash = rules::hash(token);
        let stored = StoredKey {
            version: STORED_VERSION,
            name: name.to_string(),
            sha256: rules::hash_hex(&hash),
            permissions: permissions.clone(),
            created_at: self.now(),
            expires_at,
            sqs: sqs.as_ref().map(SqsCredentials::stored),
        };
        self.store(&stored, replace).await?;
        let entry = KeyEntry {
            name: stored.name,
            hash,
            grants,
            permissions,
            created_at: stored.created_at,
            expires_at,
            sqs,
            revoked: tokio_util::sync::CancellationToken::new(),
        };
        let mut cache = self.cache.write();
        cache.insert(entry);
        self.set_mode(&cache);
        cache
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| ServiceError::Internal("key vanished while being created".into()))
    }

    async fn store(&self, stored: &StoredKey, replace: bool) -> Result<(), ServiceError> {
        let queue = key_queue(&stored.name)?;
        let fresh = matches!(
            self.engine
                .create_queue(queue.clone(), QueueConfig::default())
                .await?,
            Created::New(_)
        );
        let json = serde_json::to_string(stored)
            .map_err(|e| ServiceError::Internal(format!("key record not encodable: {e}")))?;
        let mut patch = MetaPatch {
            put_attributes: [(KEY_ATTRIBUTE.to_string(), json)].into(),
            ..Default::default()
        };
        if !replace {
            // Another node may have created the name since this one's cache was read.
            patch
                .expect_attributes
                .insert(KEY_ATTRIBUTE.to_string(), None);
        }
        match self.engine.update_queue_meta(&queue, patch).await {
            Ok(_) => Ok(()),
            Err(EngineError::MetaConflict { .. }) => Err(ServiceError::KeyExists {
                name: stored.name.clone(),
            }),
            Err(error) => {
                if fresh {
                    let _ = self.engine.delete_queue(&queue).await;
                }
                Err(error.into())
            }
        }
    }

    /// Every key, by name, without secrets.
    pub fn list(&self) -> proto::KeyList {
        let now = self.now();
        let keys = self
            .cache
            .read()
            .by_name
            .values()
            .map(|k| k.info(now))
            .collect();
        proto::KeyList { keys }
    }

    pub fn show(&self, name: &str) -> Result<proto::KeyInfo, ServiceError> {
        let now = self.now();
        self.cache
            .read()
            .by_name
            .get(name)
            .map(|k| k.info(now))
            .ok_or_else(|| ServiceError::KeyNotFound {
                name: name.to_string(),
            })
    }

    /// Revokes a key at once (on this node; on others within `keys_refresh_ms`). Refuses to
    /// remove the last valid key that may manage keys.
    pub async fn revoke(&self, name: &str) -> Result<(), ServiceError> {
        let _changes = self.changes.lock().await;
        let now = self.now();
        {
            let cache = self.cache.read();
            let entry = cache
                .by_name
                .get(name)
                .ok_or_else(|| ServiceError::KeyNotFound {
                    name: name.to_string(),
                })?;
            let other_admin = cache
                .by_name
                .values()
                .any(|k| k.name != name && k.is_key_admin(now));
            if entry.is_key_admin(now) && !other_admin {
                return Err(ServiceError::LastAdminKey {
                    name: name.to_string(),
                });
            }
        }
        match self.engine.delete_queue(&key_queue(name)?).await {
            Ok(()) | Err(EngineError::QueueNotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
        let mut cache = self.cache.write();
        cache.remove(name);
        self.set_mode(&cache);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use baton_engine::{EngineConfig, LocalEngine, SystemClock};

    fn store() -> KeyStore {
        let engine = LocalEngine::in_memory(Arc::new(SystemClock), EngineConfig::default());
        KeyStore::new(Arc::new(engine), 3)
    }

    fn send_on(resource: &str) -> Vec<proto::KeyPermission> {
        vec![proto::KeyPermission {
            actions: vec![KeyAction::Send],
            resources: vec![resource.to_string()],
        }]
    }

    #[tokio::test]
    async fn keys_are_created_found_reloaded_and_revoked() {
        let keys = store();
        keys.load().await.unwrap();
        keys.activate();
        assert_eq!(keys.mode(), Mode::Open);
        keys.install("admin", &"a".repeat(40), rules::admin_permissions())
            .await
            .unwrap();
        let created = keys
            .create(proto::CreateKey {
                name: "ci".into(),
                permissions: send_on("queue:orders*"),
                expires_at: None,
                sqs: false,
            })
            .await
            .unwrap();
        assert_eq!(keys.mode(), Mode::Enforced);
        let entry = keys.authenticate(&created.key).unwrap();
        assert!(entry.grants.allows(KeyAction::Send, "queue:orders-eu"));
        assert!(keys.authenticate("bk_wrong").is_err());
        // What is durable comes back on a re-read, and the record holds no secret.
        keys.load().await.unwrap();
        assert_eq!(keys.list().keys.len(), 2);
        assert!(keys.authenticate(&created.key).is_ok());
        let view = keys
            .engine
            .get_queue(&key_queue("ci").unwrap())
            .await
            .unwrap();
        assert!(!view.meta.attributes[KEY_ATTRIBUTE].contains(&created.key));

        keys.revoke("ci").await.unwrap();
        assert!(keys.authenticate(&created.key).is_err());
        assert!(matches!(
            keys.revoke("admin").await,
            Err(ServiceError::LastAdminKey { .. })
        ));
    }

    #[tokio::test]
    async fn names_limits_and_duplicates() {
        let keys = store();
        keys.load().await.unwrap();
        let request = |name: &str| proto::CreateKey {
            name: name.into(),
            permissions: send_on("topic:*"),
            expires_at: None,
            sqs: false,
        };
        keys.create(request("a")).await.unwrap();
        assert!(matches!(
            keys.create(request("a")).await,
            Err(ServiceError::KeyExists { .. })
        ));
        assert!(keys.create(request("bad name")).await.is_err());
        keys.create(request("b")).await.unwrap();
        keys.create(request("c")).await.unwrap();
        assert!(matches!(
            keys.create(request("d")).await,
            Err(ServiceError::TooManyKeys { limit: 3 })
        ));
        let past = proto::CreateKey {
            expires_at: Some(1),
            ..request("e")
        };
        assert!(keys.create(past).await.is_err());
    }

    #[tokio::test]
    async fn sqs_credentials_are_kept_listed_without_the_secret_and_revoked() {
        let keys = store();
        keys.load().await.unwrap();
        let created = keys
            .create(proto::CreateKey {
                name: "app".into(),
                permissions: send_on("queue:*"),
                expires_at: None,
                sqs: true,
            })
            .await
            .unwrap();
        let id = created.access_key_id.clone().unwrap();
        let secret = created.secret_access_key.clone().unwrap();
        assert!(id.starts_with("BKIA") && id.len() == 20, "{id}");
        assert_eq!(secret.len(), 40);
        // Durable (the secret is in the record: SigV4 needs it), found by id after a re-read.
        keys.load().await.unwrap();
        let entry = keys.sqs_key(&id).unwrap();
        assert_eq!(entry.sqs.as_ref().unwrap().secret(), secret);
        assert!(!format!("{entry:?}").contains(&secret));
        let shown = keys.show("app").unwrap();
        assert_eq!(shown.access_key_id.as_deref(), Some(id.as_str()));
        assert!(!serde_json::to_string(&keys.list())
            .unwrap()
            .contains(&secret));
        // A key without SQS credentials has none.
        let plain = keys
            .create(proto::CreateKey {
                name: "plain".into(),
                permissions: send_on("queue:*"),
                expires_at: None,
                sqs: false,
            })
            .await
            .unwrap();
        assert_eq!(plain.access_key_id, None);
        keys.revoke("app").await.unwrap();
        assert!(keys.sqs_key(&id).is_none());
        keys.load().await.unwrap();
        assert!(keys.sqs_key(&id).is_none());
    }

    #[tokio::test]
    async fn records_of_earlier_versions_load() {
        let keys = store();
        let queue = key_queue("old").unwrap();
        keys.engine
            .create_queue(queue.clone(), QueueConfig::default())
            .await
            .unwrap();
        // The format version 1 wrote before SQS credentials existed.
        let record = format!(
            r#"{{"version":1,"name":"old","sha256":"{}","permissions":[{{"actions":["send"],"resources":["queue:*"]}}],"created_at":1,"expires_at":null}}"#,
            rules::hash_hex(&rules::hash(&"o".repeat(40)))
        );
        let patch = MetaPatch {
            put_attributes: [(KEY_ATTRIBUTE.to_string(), record)].into(),
            ..Default::default()
        };
        keys.engine.update_queue_meta(&queue, patch).await.unwrap();
        keys.load().await.unwrap();
        assert!(keys.authenticate(&"o".repeat(40)).is_ok());
        assert_eq!(keys.show("old").unwrap().access_key_id, None);
    }

    #[tokio::test]
    async fn a_damaged_record_keeps_keys_required() {
        let keys = store();
        let queue = key_queue("x").unwrap();
        keys.engine
            .create_queue(queue.clone(), QueueConfig::default())
            .await
            .unwrap();
        let patch = MetaPatch {
            put_attributes: [(KEY_ATTRIBUTE.to_string(), "{not json".to_string())].into(),
            ..Default::default()
        };
        keys.engine.update_queue_meta(&queue, patch).await.unwrap();
        keys.load().await.unwrap();
        keys.activate();
        assert_eq!(keys.mode(), Mode::Enforced);
        assert!(keys.list().keys.is_empty());
    }
}
