//! Distributed locks (leases with fencing tokens) as a pure table over injected time.
//!
//! A [`LockTable`] maps [`LockName`]s to their current holder. `acquire` grants a free (or
//! expired) lock to a holder for `ttl_ms` and hands out a [`FencingToken`]; `renew` extends
//! it, `release` ends it, and expiry is nothing but `now` passing `expires_at`: no timer
//! runs, every operation takes `now` from its caller.
//!
//! # Invariants
//! - **Tokens strictly increase per name over the lock's whole life.** A name keeps its last
//!   token after release or expiry (a tombstone). When the table is full, tombstones are swept
//!   out and their largest token is folded into `token_floor`; a new token is always
//!   `max(last token of the name, token_floor) + 1`, so a swept name never gets a token it had
//!   before. Replay restores tokens with the same max rule, so a restart never lowers one.
//! - **At most one live holder per name**: a hold whose `expires_at <= now` is no hold.
//! - **Refusals change nothing.** Every error leaves the table as it was.
//! - **Bounded.** At most `locks_max` names (held or tombstoned) are kept; names are at most
//!   `name_chars_max` characters, holders at most [`HOLDER_CHARS_MAX`], TTLs within
//!   `ttl_ms_min..=ttl_ms_max`.
//!
//! The `restore_*` functions apply logged outcomes during recovery: they skip the limits
//! (what was granted stays granted) and never lower a token.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::time::Timestamp;

/// Longest holder id.
pub const HOLDER_CHARS_MAX: usize = 256;
/// Locks one list call returns at most.
pub const LOCK_LIST_MAX: usize = 1000;
/// Longest lock name any configuration may allow.
pub const LOCK_NAME_CHARS_LIMIT: u32 = 1024;

/// The configured limits of a lock table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockLimits {
    /// Names the table keeps at once, held or remembered for their last token.
    pub locks_max: u32,
    /// Longest name, 1..=[`LOCK_NAME_CHARS_LIMIT`].
    pub name_chars_max: u32,
    pub ttl_ms_min: u64,
    pub ttl_ms_max: u64,
}

impl Default for LockLimits {
    fn default() -> Self {
        LockLimits {
            locks_max: 100_000,
            name_chars_max: 256,
            ttl_ms_min: 100,
            ttl_ms_max: 24 * 60 * 60 * 1000,
        }
    }
}

/// A validated lock name: 1..=`name_chars_max` characters of `[A-Za-z0-9_.:-]`, so that it
/// fits in a URL path segment unescaped (`order:42`, `jobs.cleanup`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockName(Arc<str>);

impl LockName {
    pub fn new(name: &str, limits: &LockLimits) -> Result<Self, LockError> {
        let invalid = |reason: String| LockError::InvalidName {
            name: name.chars().take(80).collect(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("a lock name must not be empty".to_string()));
        }
        let n_chars = name.chars().count();
        if n_chars > limits.name_chars_max as usize {
            return Err(invalid(format!(
                "a lock name is at most {} characters, this one has {n_chars}",
                limits.name_chars_max
            )));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
        {
            return Err(invalid(format!(
                "character {bad:?} is not allowed: use A-Z, a-z, 0-9, '-', '_', '.' and ':'"
            )));
        }
        Ok(LockName(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Ordering and equality of `LockName` are those of its `str`, so lookups and ranges by `&str`
// agree with the map's order.
impl std::borrow::Borrow<str> for LockName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LockName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The number a holder presents to renew or release its lock, and to fence writes: larger
/// means later. Never reused for a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    pub const fn new(token: u64) -> Self {
        FencingToken(token)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Who holds a lock. 1..=[`HOLDER_CHARS_MAX`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Holder(Arc<str>);

impl Holder {
    pub fn new(holder: &str) -> Result<Self, LockError> {
        let invalid = |reason: &str| LockError::InvalidHolder {
            reason: reason.to_string(),
        };
        if holder.is_empty() {
            return Err(invalid("a holder must not be empty"));
        }
        if holder.chars().count() > HOLDER_CHARS_MAX {
            return Err(invalid("a holder is at most 256 characters"));
        }
        if holder.chars().any(char::is_control) {
            return Err(invalid("a holder must not contain control characters"));
        }
        Ok(Holder(Arc::from(holder)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A live hold on a lock, as `acquire`, `renew`, `get` and `list` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHold {
    pub name: LockName,
    pub holder: Holder,
    pub token: FencingToken,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What `release` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The hold ended now.
    Released,
    /// The token was the name's last one, but its hold had already ended (expired or
    /// released before): nothing changed. A retried release lands here.
    AlreadyEnded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("invalid lock name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid holder: {reason}")]
    InvalidHolder { reason: String },
    #[error("ttl_ms {ttl_ms} is out of range: {min}..={max}")]
    TtlOutOfRange { ttl_ms: u64, min: u64, max: u64 },
    #[error("lock {name} is held by {holder} until {expires_at}", expires_at = expires_at.as_millis())]
    Held {
        name: LockName,
        holder: Holder,
        expires_at: Timestamp,
    },
    #[error("lock {name} is not held")]
    NotHeld { name: String },
    #[error("token {token} is not lock {name}'s current token{}", current.map(|c| format!(" ({c} is)")).unwrap_or_default())]
    TokenStale {
        name: LockName,
        token: FencingToken,
        current: Option<FencingToken>,
    },
    #[error("lock {name} with token {token} expired at {expired_at}; acquire it again", expired_at = expired_at.as_millis())]
    Expired {
        name: LockName,
        token: FencingToken,
        expired_at: Timestamp,
    },
    #[error("the server already keeps {limit} locks (its locks_max)")]
    TooManyLocks { limit: u32 },
}

#[derive(Debug, Clone)]
struct Hold {
    holder: Holder,
    token: FencingToken,
    acquired_at: Timestamp,
    expires_at: Timestamp,
}

impl Hold {
    fn live(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }
}

#[derive(Debug, Clone)]
struct Entry {
    last_token: FencingToken,
    hold: Option<Hold>,
}

impl Entry {
    fn live_hold(&self, now: Timestamp) -> Option<&Hold> {
        self.hold.as_ref().filter(|hold| hold.live(now))
    }
}

/// One name's state in a snapshot: its last token and its hold, if any (possibly expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockSnapshot {
    pub name: LockName,
    pub last_token: FencingToken,
    pub hold: Option<(Holder, Timestamp, Timestamp)>,
}

/// Every lock of a server. See the module doc for the invariants.
#[derive(Debug, Clone)]
pub struct LockTable {
    limits: LockLimits,
    entries: BTreeMap<LockName, Entry>,
    /// Every token ever issued to a name that is no longer in `entries` is at or below this.
    token_floor: u64,
}

impl LockTable {
    pub fn new(limits: LockLimits) -> Self {
        LockTable {
            limits,
            entries: BTreeMap::new(),
            token_floor: 0,
        }
    }

    pub fn limits(&self) -> &LockLimits {
        &self.limits
    }

    /// Checks `ttl_ms` against the configured range.
    pub fn check_ttl(&self, ttl_ms: u64) -> Result<(), LockError> {
        let (min, max) = (self.limits.ttl_ms_min, self.limits.ttl_ms_max);
        if min <= ttl_ms && ttl_ms <= max {
            Ok(())
        } else {
            Err(LockError::TtlOutOfRange { ttl_ms, min, max })
        }
    }

    /// Grants `name` to `holder` for `ttl_ms` when nobody holds it live.
    ///
    /// # Errors
    /// `Held` while another hold is live (also for the same holder: holds are not
    /// re-entrant), `TtlOutOfRange`, `TooManyLocks` when the table is full of live holds.
    pub fn acquire(
        &mut self,
        now: Timestamp,
        name: &LockName,
        holder: &Holder,
        ttl_ms: u64,
    ) -> Result<LockHold, LockError> {
        self.check_ttl(ttl_ms)?;
        if let Some(hold) = self.entries.get(name).and_then(|e| e.live_hold(now)) {
            return Err(LockError::Held {
                name: name.clone(),
                holder: hold.holder.clone(),
                expires_at: hold.expires_at,
            });
        }
        if !self.entries.contains_key(name) && self.entries.len() >= self.limits.locks_max as usize
        {
            self.sweep(now);
            if self.entries.len() >= self.limits.locks_max as usize {
                return Err(LockError::TooManyLocks {
                    limit: self.limits.locks_max,
                });
            }
        }
        let floor = self.token_floor;
        let entry = self.entries.entry(name.clone()).or_insert(Entry {
            last_token: FencingToken(0),
            hold: None,
        });
        let token = FencingToken(entry.last_token.0.max(floor) + 1);
        let hold = Hold {
            holder: holder.clone(),
            token,
            acquired_at: now,
            expires_at: now.plus_ms(ttl_ms),
        };
        entry.last_token = token;
        entry.hold = Some(hold.clone());
        Ok(view(name, &hold))
    }

    /// Extends a live hold to `now + ttl_ms` (which may also shorten it).
    ///
    /// # Errors
    /// `NotHeld` for a name the table does not know, `TokenStale` when `token` or `holder`
    /// is not the current hold's, `Expired` when it is but the hold already ended.
    pub fn renew(
        &mut self,
        now: Timestamp,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
        ttl_ms: u64,
    ) -> Result<LockHold, LockError> {
        self.check_ttl(ttl_ms)?;
        let entry = self
            .entries
            .get_mut(name)
            .ok_or_else(|| LockError::NotHeld {
                name: name.to_string(),
            })?;
        let current = entry_current(entry, now);
        let Some(hold) = entry
            .hold
            .as_mut()
            .filter(|hold| hold.token == token && &hold.holder == holder)
        else {
            return Err(LockError::TokenStale {
                name: name.clone(),
                token,
                current,
            });
        };
        if !hold.live(now) {
            return Err(LockError::Expired {
                name: name.clone(),
                token,
                expired_at: hold.expires_at,
            });
        }
        hold.expires_at = now.plus_ms(ttl_ms);
        Ok(view(name, hold))
    }

    /// Ends the hold of `token`.
    ///
    /// # Errors
    /// `TokenStale` when another hold is live, when `token` is older than the name's last one,
    /// or when the live hold is `token`'s but not `holder`'s; `NotHeld` for a name the table
    /// does not know.
    pub fn release(
        &mut self,
        now: Timestamp,
        name: &LockName,
        holder: &Holder,
        token: FencingToken,
    ) -> Result<Released, LockError> {
        let entry = self
            .entries
            .get_mut(name)
            .ok_or_else(|| LockError::NotHeld {
                name: name.to_string(),
            })?;
        let current = entry_current(entry, now);
        let stale = LockError::TokenStale {
            name: name.clone(),
            token,
            current,
        };
        if entry.last_token != token {
            return Err(stale);
        }
        match entry.live_hold(now) {
            Some(hold) if &hold.holder != holder => Err(stale),
            Some(_) => {
                entry.hold = None;
                Ok(Released::Released)
            }
            None => {
                entry.hold = None;
                Ok(Released::AlreadyEnded)
            }
        }
    }

    /// The live hold of `name`, if any.
    pub fn get(&self, now: Timestamp, name: &LockName) -> Option<LockHold> {
        let entry = self.entries.get(name)?;
        entry.live_hold(now).map(|hold| view(name, hold))
    }

    /// Live holds whose names start with `prefix` and come after `after`, in name order, at
    /// most `max` (capped at [`LOCK_LIST_MAX`]).
    pub fn list(
        &self,
        now: Timestamp,
        prefix: &str,
        after: Option<&str>,
        max: usize,
    ) -> Vec<LockHold> {
        let max = max.min(LOCK_LIST_MAX);
        let start = match after {
            Some(after) if after >= prefix => after,
            _ => prefix,
        };
        self.entries
            .range::<str, _>((std::ops::Bound::Included(start), std::ops::Bound::Unbounded))
            .filter(|(name, _)| Some(name.as_str()) != after)
            .take_while(|(name, _)| name.as_str().starts_with(prefix))
            .filter_map(|(name, entry)| entry.live_hold(now).map(|hold| view(name, hold)))
            .take(max)
            .collect()
    }

    /// Names with a live hold.
    pub fn n_held(&self, now: Timestamp) -> usize {
        self.entries
            .values()
            .filter(|e| e.live_hold(now).is_some())
            .count()
    }

    /// Names kept (held or tombstoned).
    pub fn n_names(&self) -> usize {
        self.entries.len()
    }

    /// Whether `token` is `name`'s live hold now: the fencing check.
    pub fn is_current(&self, now: Timestamp, name: &LockName, token: FencingToken) -> bool {
        self.entries
            .get(name)
            .and_then(|entry| entry.live_hold(now))
            .is_some_and(|hold| hold.token == token)
    }

    /// When the live hold of `name` ends, if there is one: a waiter's wake-up time.
    pub fn expires_at(&self, now: Timestamp, name: &LockName) -> Option<Timestamp> {
        self.entries
            .get(name)
            .and_then(|e| e.live_hold(now))
            .map(|h| h.expires_at)
    }

    /// Forgets every name without a live hold, folding their tokens into the floor.
    fn sweep(&mut self, now: Timestamp) {
        let mut floor = self.token_floor;
        self.entries.retain(|_, entry| {
            let keep = entry.live_hold(now).is_some();
            if !keep {
                floor = floor.max(entry.last_token.0);
            }
            keep
        });
        self.token_floor = floor;
    }

    /// The floor, for checkpoints.
    pub fn token_floor(&self) -> u64 {
        self.token_floor
    }

    /// Every name with its last token and hold (expired ones too), for checkpoints.
    pub fn snapshot(&self) -> impl Iterator<Item = LockSnapshot> + '_ {
        self.entries.iter().map(|(name, entry)| LockSnapshot {
            name: name.clone(),
            last_token: entry.last_token,
            hold: entry
                .hold
                .as_ref()
                .map(|h| (h.holder.clone(), h.acquired_at, h.expires_at)),
        })
    }

    /// Recovery: raises the floor to `floor` (never lowers it).
    pub fn restore_floor(&mut self, floor: u64) {
        self.token_floor = self.token_floor.max(floor);
    }

    /// Recovery: puts back one name of a checkpoint.
    pub fn restore_snapshot(&mut self, snapshot: LockSnapshot) {
        let entry = self.entries.entry(snapshot.name).or_insert(Entry {
            last_token: FencingToken(0),
            hold: None,
        });
        if snapshot.last_token >= entry.last_token {
            entry.last_token = snapshot.last_token;
            entry.hold = snapshot.hold.map(|(holder, acquired_at, expires_at)| Hold {
                holder,
                token: snapshot.last_token,
                acquired_at,
                expires_at,
            });
        }
    }

    /// Recovery: applies a logged grant, unless the name already has this token or a later
    /// one.
    pub fn restore_grant(&mut self, hold: LockHold) {
        let entry = self.entries.entry(hold.name).or_insert(Entry {
            last_token: FencingToken(0),
            hold: None,
        });
        if hold.token > entry.last_token {
            entry.last_token = hold.token;
            entry.hold = Some(Hold {
                holder: hold.holder,
                token: hold.token,
                acquired_at: hold.acquired_at,
                expires_at: hold.expires_at,
            });
        }
    }

    /// Recovery: applies a logged renewal of `token`'s hold.
    pub fn restore_renew(&mut self, name: &LockName, token: FencingToken, expires_at: Timestamp) {
        if let Some(hold) = self
            .entries
            .get_mut(name)
            .and_then(|e| e.hold.as_mut())
            .filter(|h| h.token == token)
        {
            hold.expires_at = expires_at;
        }
    }

    /// Recovery: applies a logged release of `token`'s hold.
    pub fn restore_release(&mut self, name: &LockName, token: FencingToken) {
        if let Some(entry) = self.entries.get_mut(name) {
            if entry.hold.as_ref().is_some_and(|h| h.token == token) {
                entry.hold = None;
            }
        }
    }
}

fn entry_current(entry: &Entry, now: Timestamp) -> Option<FencingToken> {
    entry.live_hold(now).map(|h| h.token)
}

fn view(name: &LockName, hold: &Hold) -> LockHold {
    LockHold {
        name: name.clone(),
        holder: hold.holder.clone(),
        token: hold.token,
        acquired_at: hold.acquired_at,
        expires_at: hold.expires_at,
    }
}
