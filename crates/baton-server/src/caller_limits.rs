//! How many long polls and live streams one API key and one client address may hold open at
//! once (`key_long_polls_max`, `client_long_polls_max`, `key_live_streams_max`,
//! `client_live_streams_max`; 0: no limit), on top of the server-wide limits
//! (`max_waiting_receives`, `live_streams_max`), so one tenant cannot take every slot.
//!
//! A slot is held by a [`Slot`] guard for as long as the long poll waits or the stream is
//! open, and given back when the guard drops, however the request ends. Invariant: a count
//! in a table is the number of live guards of that caller; a caller at zero has no entry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::service::ServiceError;

/// Whose slot it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Key(Arc<str>),
    Client(IpAddr),
}

/// What a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    LongPoll,
    LiveStream,
}

struct Table {
    per_key: u32,
    per_client: u32,
    held: Mutex<HashMap<Holder, u32>>,
}

impl Table {
    fn new(per_key: u32, per_client: u32) -> Option<Arc<Table>> {
        (per_key > 0 || per_client > 0).then(|| {
            Arc::new(Table {
                per_key,
                per_client,
                held: Mutex::new(HashMap::new()),
            })
        })
    }
}

/// Who a request is from, for the limits: its key and its client address (either unknown).
#[derive(Clone, Default)]
pub struct Who {
    pub key: Option<Arc<crate::auth::KeyEntry>>,
    pub client: Option<IpAddr>,
}

impl Who {
    fn key_name(&self) -> Option<&str> {
        self.key.as_ref().map(|key| key.name.as_str())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let key = parts
            .extensions
            .get::<crate::auth::Caller>()
            .and_then(|caller| caller.0.clone());
        let client = crate::http_listener::ClientAddr::ip_of(&parts.extensions);
        Ok(Who { key, client })
    }
}

/// A live stream's slot, taken by the permission check before the route runs and kept by
/// the stream (`auth::middleware`; WebSocket handlers move it into their socket's task).
#[derive(Clone)]
pub struct LiveSlot(pub Arc<Slot>);

/// The limits of both kinds.
pub struct CallerLimits {
    long_polls: Option<Arc<Table>>,
    live_streams: Option<Arc<Table>>,
}

/// One held slot (or none, when no limit applies); given back on drop.
#[must_use = "the slot is given back when this is dropped"]
pub struct Slot {
    table: Option<Arc<Table>>,
    holders: Vec<Holder>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(table) = &self.table else { return };
        let mut held = table.held.lock();
        for holder in &self.holders {
            if let Some(count) = held.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    held.remove(holder);
                }
            }
        }
    }
}

impl CallerLimits {
    pub fn new(long_polls: (u32, u32), live_streams: (u32, u32)) -> Self {
        CallerLimits {
            long_polls: Table::new(long_polls.0, long_polls.1),
            live_streams: Table::new(live_streams.0, live_streams.1),
        }
    }

    /// Whether no limit is configured.
    pub fn is_off(&self) -> bool {
        self.long_polls.is_none() && self.live_streams.is_none()
    }

    /// [`CallerLimits::take`] for `who`.
    pub fn take_for(&self, kind: SlotKind, who: &Who) -> Result<Slot, ServiceError> {
        self.take(kind, who.key_name(), who.client)
    }

    /// Takes a slot of `kind` for the caller (its key's name and client address, either
    /// unknown), or refuses with 429 naming who is at which limit; nothing is taken then.
    pub fn take(
        &self,
        kind: SlotKind,
        key: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<Slot, ServiceError> {
        let table = match kind {
            SlotKind::LongPoll => &self.long_polls,
            SlotKind::LiveStream => &self.live_streams,
        };
        let Some(table) = table else {
            return Ok(Slot {
                table: None,
                holders: Vec::new(),
            });
        };
        let mut holders = Vec::with_capacity(2);
        if let (Some(key), true) = (key, table.per_key > 0) {
            holders.push((Holder::Key(Arc::from(key)), table.per_key));
        }
        if let (Some(client), true) = (client, table.per_client > 0) {
            holders.push((Holder::Client(client), table.per_client));
        }
        let mut held = table.held.lock();
        for (holder, limit) in &holders {
            if held.get(holder).copied().unwrap_or(0) >= *limit {
                let (who, setting) = match (holder, kind) {
                    (Holder::Key(name), SlotKind::LongPoll) => {
                        (format!("API key `{name}`"), "key_long_polls_max")
                    }
                    (Holder::Key(name), SlotKind::LiveStream) => {
                        (format!("API key `{name}`"), "key_live_streams_max")
                    }
                    (Holder::Client(ip), SlotKind::LongPoll) => {
                        (format!("client {ip}"), "client_long_polls_max")
                    }
                    (Holder::Client(ip), SlotKind::LiveStream) => {
                        (format!("client {ip}"), "client_live_streams_max")
                    }
                };
                return Err(ServiceError::CallerLimit {
                    who,
                    what: match kind {
                        SlotKind::LongPoll => "long polls",
                        SlotKind::LiveStream => "live streams",
                    },
                    limit: *limit,
                    setting,
                    kind,
                });
            }
        }
        for (holder, _) in &holders {
            *held.entry(holder.clone()).or_insert(0) += 1;
        }
        drop(held);
        Ok(Slot {
            table: Some(table.clone()),
            holders: holders.into_iter().map(|(holder, _)| holder).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn slots_are_counted_per_key_and_per_client_and_given_back_on_drop() {
        let limits = CallerLimits::new((2, 3), (0, 0));
        let ip = IpAddr::from([10, 0, 0, 1]);
        let a = limits
            .take(SlotKind::LongPoll, Some("a"), Some(ip))
            .unwrap();
        let b = limits
            .take(SlotKind::LongPoll, Some("a"), Some(ip))
            .unwrap();
        // Key `a` is at its 2; another key from the same address still has room there.
        let error = limits
            .take(SlotKind::LongPoll, Some("a"), Some(ip))
            .err()
            .unwrap();
        assert!(error.to_string().contains("API key `a`"), "{error}");
        let c = limits
            .take(SlotKind::LongPoll, Some("b"), Some(ip))
            .unwrap();
        // The address is at its 3 now.
        let error = limits
            .take(SlotKind::LongPoll, Some("c"), Some(ip))
            .err()
            .unwrap();
        assert!(error.to_string().contains("client 10.0.0.1"), "{error}");
        assert!(
            error.to_string().contains("client_long_polls_max"),
            "{error}"
        );
        drop(a);
        let _d = limits
            .take(SlotKind::LongPoll, Some("a"), Some(ip))
            .unwrap();
        drop((b, c));
        // Live streams have no limit here: no slot is counted.
        for _ in 0..100 {
            let _slot = limits
                .take(SlotKind::LiveStream, Some("a"), Some(ip))
                .unwrap();
        }
        // Everything given back leaves no entry behind.
        drop(_d);
        assert!(limits.long_polls.as_ref().unwrap().held.lock().is_empty());
    }
}
