//! Locks: `/v1/locks/...` (leases with fencing tokens).
//!
//! A holder acquires a lock for `ttl_ms` and gets a `token`; it renews before `expires_at` and
//! releases when done. Tokens strictly increase per lock name, across releases, expiries and
//! restarts, so a downstream that remembers the largest token it saw can refuse a holder that
//! lost the lock without knowing it (fencing).

use serde::{Deserialize, Serialize};

use crate::error::ErrorDetail;

/// `PUT /v1/locks/{name}`. `wait_ms` (default 0) waits that long for the lock to be released
/// or to expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireLock {
    pub holder: String,
    pub ttl_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// `POST /v1/locks/{name}/renew`: a new TTL, from now, for the hold of `token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewLock {
    pub holder: String,
    pub token: u64,
    pub ttl_ms: u64,
}

/// `POST /v1/locks/{name}/release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseLock {
    pub holder: String,
    pub token: u64,
}

/// A live hold: the answer of acquire, renew and `GET /v1/locks/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub name: String,
    pub holder: String,
    pub token: u64,
    pub acquired_at: u64,
    pub expires_at: u64,
}

/// `POST /v1/locks/{name}/release`'s answer: `released` is false when the hold had already
/// ended (expired, or released before), which a retried release sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseResponse {
    pub released: bool,
}

/// `GET /v1/locks?prefix=&after=&max=`: live holds in name order. `next_after` is set when
/// there may be more: pass it as `after`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockList {
    pub locks: Vec<LockInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// Who holds a lock that an acquire did not get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHeld {
    pub name: String,
    pub holder: String,
    pub expires_at: u64,
}

/// The 409 `lock_held` answer: the usual error object, and the current hold beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHeldBody {
    pub error: ErrorDetail,
    pub lock: LockHeld,
}

/// `"fence": {"lock", "token"}` on a write: the write is refused with 409 `fenced` unless
/// `token` is the lock's live hold when the write is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fence {
    pub lock: String,
    pub token: u64,
}
