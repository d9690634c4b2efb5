//! Consumer groups: a position per partition, the pending list (records delivered and not yet
//! acked, each with its consumer, delivery time and delivery count), claim, and partition
//! ownership.
//!
//! # Ownership (mode `partitioned`, the default)
//! A consumer is *live* while it has read or claimed within `session_timeout_ms`. The live
//! consumers, ordered by name, get the partitions round-robin (`partition i → live[i % n]`):
//! that is the *target*. A partition moves to its target owner only once its current owner is
//! no longer live or has nothing pending in it, so a new owner never reads past records the
//! old owner still holds: per-key order holds across a rebalance, with no client protocol.
//! Meanwhile the old owner gets no new records from it (it drains), so the move happens as
//! soon as it has acked what it holds.
//! A stopped consumer's pending records stay pending until another consumer claims them.
//!
//! # Shared mode
//! Any consumer gets the next records of any partition (Redis Streams consumer groups).
//!
//! # Invariants
//! - A record is pending for at most one consumer; it becomes pending only once (a read
//!   delivers only records at or past the partition's position, then moves the position past
//!   them) and leaves the pending list only by ack or retention; claim changes its consumer.
//! - Positions only move forward by reads; `seek` sets them explicitly.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::{check_name, RecordId, StreamError};
use crate::time::Timestamp;

/// Groups per stream.
pub const GROUPS_MAX: usize = 100;
/// Consumers a group remembers at once (live or holding pending records).
pub const CONSUMERS_MAX: usize = 1000;
/// Records pending per group; a read beyond it fails with `PendingFull`.
pub const PENDING_MAX: usize = 100_000;
pub const SESSION_TIMEOUT_MS_DEFAULT: u64 = 30_000;
pub const SESSION_TIMEOUT_MS_MIN: u64 = 100;
pub const SESSION_TIMEOUT_MS_MAX: u64 = 60 * 60 * 1000;

macro_rules! name_type {
    ($type:ident, $what:literal) => {
        #[doc = concat!("A validated ", $what, " name (the stream naming rule).")]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $type(Arc<str>);

        impl $type {
            pub fn new(name: &str) -> Result<Self, StreamError> {
                check_name($what, name).map(|()| $type(Arc::from(name)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(GroupName, "group");
name_type!(ConsumerName, "consumer");

/// Where a group (or a seek) starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPosition {
    Earliest,
    Latest,
    /// This offset in every partition, clamped to each partition's retained range.
    Offset(u64),
    /// The first record at or after this time, in every partition.
    Time(Timestamp),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMode {
    /// Each partition is owned by one live consumer at a time.
    Partitioned,
    /// Any consumer gets any record.
    Shared,
}

impl GroupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupMode::Partitioned => "partitioned",
            GroupMode::Shared => "shared",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    pub start: StartPosition,
    pub mode: GroupMode,
    pub session_timeout_ms: u64,
}

impl GroupConfig {
    pub fn validate(&self) -> Result<(), StreamError> {
        if !(SESSION_TIMEOUT_MS_MIN <= self.session_timeout_ms
            && self.session_timeout_ms <= SESSION_TIMEOUT_MS_MAX)
        {
            return Err(StreamError::InvalidParameter {
                field: "session_timeout_ms",
                reason: format!(
                    "must be {SESSION_TIMEOUT_MS_MIN}..={SESSION_TIMEOUT_MS_MAX}, got {}",
                    self.session_timeout_ms
                ),
            });
        }
        Ok(())
    }

    pub fn differences(&self, requested: &GroupConfig) -> Vec<String> {
        let mut out = Vec::new();
        if self.start != requested.start {
            out.push(format!(
                "start is {:?}, requested {:?}",
                self.start, requested.start
            ));
        }
        if self.mode != requested.mode {
            out.push(format!(
                "mode is {}, requested {}",
                self.mode.as_str(),
                requested.mode.as_str()
            ));
        }
        if self.session_timeout_ms != requested.session_timeout_ms {
            out.push(format!(
                "session_timeout_ms is {}, requested {}",
                self.session_timeout_ms, requested.session_timeout_ms
            ));
        }
        out
    }
}

/// A record handed to a consumer by a read or a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub id: RecordId,
    pub delivery_count: u32,
}

/// One pending record, for the pending list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    pub id: RecordId,
    pub consumer: ConsumerName,
    pub idle_ms: u64,
    pub delivery_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStats {
    pub name: GroupName,
    pub mode: GroupMode,
    /// Per partition: records not yet delivered to the group (end − position).
    pub lag: Vec<u64>,
    pub lag_total: u64,
    pub pending: u64,
    /// Live consumers and the partitions each owns (empty in shared mode).
    pub consumers: Vec<(ConsumerName, Vec<u32>)>,
}

#[derive(Debug, Clone)]
pub struct Group {
    name: GroupName,
    config: GroupConfig,
    positions: Vec<u64>,
    pending: BTreeMap<RecordId, (ConsumerName, Timestamp, u32)>,
    /// Last read or claim of each consumer seen since start (not durable: liveness is about
    /// the present).
    last_seen: BTreeMap<ConsumerName, Timestamp>,
    /// Current owner per partition (partitioned mode).
    owners: Vec<Option<ConsumerName>>,
    /// Who should own each partition given the live consumers (partitioned mode).
    targets: Vec<Option<ConsumerName>>,
    /// Where the next shared read starts looking, so partitions take turns.
    cursor: u32,
}

impl Group {
    pub(crate) fn new(name: GroupName, config: GroupConfig, positions: Vec<(u32, u64)>) -> Self {
        let mut group = Group {
            name,
            config,
            positions: vec![0; positions.len()],
            pending: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            owners: vec![None; positions.len()],
            targets: vec![None; positions.len()],
            cursor: 0,
        };
        group.set_positions(&positions);
        group
    }

    /// A group as a snapshot recorded it: `pending` is `(id, consumer, delivered_at, count)`.
    pub fn restore(
        name: GroupName,
        config: GroupConfig,
        positions: Vec<u64>,
        pending: Vec<(RecordId, ConsumerName, Timestamp, u32)>,
    ) -> Self {
        let n = positions.len();
        Group {
            name,
            config,
            positions,
            pending: pending
                .into_iter()
                .map(|(id, c, at, n)| (id, (c, at, n)))
                .collect(),
            last_seen: BTreeMap::new(),
            owners: vec![None; n],
            targets: vec![None; n],
            cursor: 0,
        }
    }

    pub fn name(&self) -> &GroupName {
        &self.name
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    pub fn positions(&self) -> &[u64] {
        &self.positions
    }

    /// Every pending record: `(id, consumer, delivered_at, delivery_count)`, in id order.
    pub fn pending_entries(
        &self,
    ) -> impl Iterator<Item = (RecordId, &ConsumerName, Timestamp, u32)> {
        self.pending
            .iter()
            .map(|(id, (c, at, n))| (*id, c, *at, *n))
    }

    pub fn n_pending(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn set_positions(&mut self, positions: &[(u32, u64)]) {
        for (partition, position) in positions {
            if let Some(slot) = self.positions.get_mut(*partition as usize) {
                *slot = *position;
            }
        }
    }

    pub(crate) fn trim(&mut self, firsts: &[u64]) {
        for (position, first) in self.positions.iter_mut().zip(firsts) {
            *position = (*position).max(*first);
        }
        self.pending.retain(|id, _| {
            firsts
                .get(id.partition as usize)
                .is_some_and(|first| id.offset >= *first)
        });
    }

    fn is_live(&self, consumer: &ConsumerName, now: Timestamp) -> bool {
        self.last_seen
            .get(consumer)
            .is_some_and(|seen| now < seen.plus_ms(self.config.session_timeout_ms))
    }

    /// Marks `consumer` live, forgets consumers that are neither live nor holding anything,
    /// and moves partitions to their target owners where allowed.
    fn touch(&mut self, consumer: &ConsumerName, now: Timestamp) -> Result<(), StreamError> {
        if !self.last_seen.contains_key(consumer) && self.last_seen.len() >= CONSUMERS_MAX {
            let holding: std::collections::BTreeSet<&ConsumerName> =
                self.pending.values().map(|(c, _, _)| c).collect();
            let timeout = self.config.session_timeout_ms;
            let gone: Vec<ConsumerName> = self
                .last_seen
                .iter()
                .filter(|(c, seen)| now >= seen.plus_ms(timeout) && !holding.contains(c))
                .map(|(c, _)| c.clone())
                .collect();
            for c in gone {
                self.last_seen.remove(&c);
            }
            if self.last_seen.len() >= CONSUMERS_MAX {
                return Err(StreamError::TooManyConsumers {
                    group: self.name.to_string(),
                    limit: CONSUMERS_MAX,
                });
            }
        }
        let seen = self.last_seen.entry(consumer.clone()).or_insert(now);
        *seen = (*seen).max(now);
        self.rebalance(now);
        Ok(())
    }

    fn rebalance(&mut self, now: Timestamp) {
        if self.config.mode == GroupMode::Shared {
            return;
        }
        let live: Vec<ConsumerName> = self
            .last_seen
            .keys()
            .filter(|c| self.is_live(c, now))
            .cloned()
            .collect();
        if live.is_empty() {
            return;
        }
        for partition in 0..self.owners.len() {
            let target = live
                .get(partition % live.len())
                .expect("live is not empty")
                .clone();
            let current = self.owners.get(partition).cloned().flatten();
            let movable = match &current {
                None => true,
                Some(owner) if *owner == target => false,
                Some(owner) => !self.is_live(owner, now) || !self.holds(owner, partition as u32),
            };
            if movable {
                if let Some(slot) = self.owners.get_mut(partition) {
                    *slot = Some(target.clone());
                }
            }
            if let Some(slot) = self.targets.get_mut(partition) {
                *slot = Some(target);
            }
        }
    }

    fn holds(&self, consumer: &ConsumerName, partition: u32) -> bool {
        let from = RecordId {
            partition,
            offset: 0,
        };
        let to = RecordId {
            partition,
            offset: u64::MAX,
        };
        self.pending
            .range(from..=to)
            .any(|(_, (c, _, _))| c == consumer)
    }

    /// Partitions `consumer` owns now (all of them in shared mode).
    pub fn owned(&self, consumer: &ConsumerName) -> Vec<u32> {
        (0..self.positions.len() as u32)
            .filter(|p| {
                self.config.mode == GroupMode::Shared
                    || self
                        .owners
                        .get(*p as usize)
                        .is_some_and(|o| o.as_ref() == Some(consumer))
            })
            .collect()
    }

    pub(crate) fn read(
        &mut self,
        consumer: &ConsumerName,
        now: Timestamp,
        max: u32,
        published: &[u64],
    ) -> Result<Vec<Delivered>, StreamError> {
        self.touch(consumer, now)?;
        let room = PENDING_MAX.saturating_sub(self.pending.len());
        let n_partitions = self.positions.len() as u32;
        // A partition on its way to another consumer is drained, not read further.
        let owned: Vec<u32> = self
            .owned(consumer)
            .into_iter()
            .filter(|p| {
                self.config.mode == GroupMode::Shared
                    || self
                        .targets
                        .get(*p as usize)
                        .is_some_and(|t| t.as_ref() == Some(consumer))
            })
            .collect();
        let has_new = owned.iter().any(|p| {
            let position = self.positions.get(*p as usize).copied().unwrap_or(0);
            published
                .get(*p as usize)
                .is_some_and(|end| position < *end)
        });
        if room == 0 && has_new {
            return Err(StreamError::PendingFull {
                group: self.name.to_string(),
                limit: PENDING_MAX,
            });
        }
        let mut budget = (max as usize).min(room);
        let mut out = Vec::new();
        // Partitions take turns: start after the one the previous read started at.
        let start = self.cursor % n_partitions.max(1);
        self.cursor = (start + 1) % n_partitions.max(1);
        let mut order: Vec<u32> = owned.clone();
        order.sort_by_key(|p| (p + n_partitions - start) % n_partitions.max(1));
        for partition in order {
            let index = partition as usize;
            let end = published.get(index).copied().unwrap_or(0);
            let Some(position) = self.positions.get_mut(index) else {
                continue;
            };
            while budget > 0 && *position < end {
                let id = RecordId {
                    partition,
                    offset: *position,
                };
                *position += 1;
                self.pending.insert(id, (consumer.clone(), now, 1));
                out.push(Delivered {
                    id,
                    delivery_count: 1,
                });
                budget -= 1;
            }
        }
        Ok(out)
    }

    pub(crate) fn restore_delivered(
        &mut self,
        consumer: &ConsumerName,
        now: Timestamp,
        ids: &[RecordId],
    ) {
        for id in ids {
            if let Some(position) = self.positions.get_mut(id.partition as usize) {
                *position = (*position).max(id.offset + 1);
            }
            self.pending.insert(*id, (consumer.clone(), now, 1));
        }
    }

    pub(crate) fn ack(&mut self, ids: &[RecordId]) -> Vec<Result<(), StreamError>> {
        ids.iter()
            .map(|id| match self.pending.remove(id) {
                Some(_) => Ok(()),
                None => Err(StreamError::NotPending {
                    group: self.name.to_string(),
                    id: id.to_string(),
                }),
            })
            .collect()
    }

    pub(crate) fn claim(
        &mut self,
        consumer: &ConsumerName,
        now: Timestamp,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<Delivered>, StreamError> {
        self.touch(consumer, now)?;
        let mut out = Vec::new();
        for (id, (owner, delivered_at, count)) in self.pending.iter_mut() {
            if out.len() >= max as usize {
                break;
            }
            if now.millis_since(*delivered_at) < min_idle_ms {
                continue;
            }
            *owner = consumer.clone();
            *delivered_at = now;
            *count = count.saturating_add(1);
            out.push(Delivered {
                id: *id,
                delivery_count: *count,
            });
        }
        Ok(out)
    }

    pub(crate) fn restore_claimed(
        &mut self,
        consumer: &ConsumerName,
        now: Timestamp,
        ids: &[RecordId],
    ) {
        for id in ids {
            if let Some((owner, delivered_at, count)) = self.pending.get_mut(id) {
                *owner = consumer.clone();
                *delivered_at = now;
                *count = count.saturating_add(1);
            }
        }
    }

    /// The pending list, optionally of one consumer, at most `max` entries in id order, and
    /// the total count (of that consumer, or of the group).
    pub fn pending(
        &self,
        consumer: Option<&ConsumerName>,
        now: Timestamp,
        max: usize,
    ) -> Result<(u64, Vec<PendingInfo>), StreamError> {
        if let Some(c) = consumer {
            let known =
                self.last_seen.contains_key(c) || self.pending.values().any(|(o, _, _)| o == c);
            if !known {
                return Err(StreamError::ConsumerNotFound {
                    group: self.name.to_string(),
                    consumer: c.to_string(),
                });
            }
        }
        let matching = self
            .pending
            .iter()
            .filter(|(_, (o, _, _))| consumer.is_none_or(|c| c == o));
        let count = matching.clone().count() as u64;
        let list = matching
            .take(max)
            .map(|(id, (o, at, n))| PendingInfo {
                id: *id,
                consumer: o.clone(),
                idle_ms: now.millis_since(*at),
                delivery_count: *n,
            })
            .collect();
        Ok((count, list))
    }

    pub(crate) fn stats(&self, ends: &[u64], now: Timestamp) -> GroupStats {
        let lag: Vec<u64> = self
            .positions
            .iter()
            .zip(ends)
            .map(|(position, end)| end.saturating_sub(*position))
            .collect();
        let consumers = self
            .last_seen
            .keys()
            .filter(|c| self.is_live(c, now))
            .map(|c| {
                let owned = if self.config.mode == GroupMode::Shared {
                    Vec::new()
                } else {
                    self.owned(c)
                };
                (c.clone(), owned)
            })
            .collect();
        GroupStats {
            name: self.name.clone(),
            mode: self.config.mode,
            lag_total: lag.iter().sum(),
            lag,
            pending: self.pending.len() as u64,
            consumers,
        }
    }
}
