//! Stream semantics as a pure state machine: an append-only log split into partitions, with
//! retention, an idempotent producer, and consumer groups (see [`group`]).
//!
//! The core keeps no record bodies. Each record is a small [`Entry`] (timestamp, size and an
//! opaque `location` the engine chose: an LSN on disk, or a key into a body map in memory), so
//! a stream can hold far more data than RAM while its index stays in memory.
//!
//! # Invariants
//! - Offsets in a partition are dense and monotone: `first_offset..next_offset` are exactly the
//!   retained records, and `next_offset` never goes down, not even when retention removes
//!   everything.
//! - Timestamps in a partition never go down (an append takes `max(now, last timestamp)`), so a
//!   read from a time is a binary search.
//! - A record with a key always lands in `hash(key) % partitions` (FNV-1a 64, stable across
//!   versions and machines), so per-key order holds; keyless records go round-robin.
//! - Retention removes only from the front and never a record inside its bound: one younger
//!   than `retention_ms`, or among the newest records whose sizes fit in `retention_bytes`, or
//!   among the newest `max_records` — all per partition, as Kafka's retention is.
//! - Readers see a record only once it is *published* (`publish_upto`): the durable engine
//!   publishes after the record is on disk, so a reader never sees what a crash could lose.
//! - Nothing here reads a clock: every operation takes `now`.

pub mod group;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use crate::time::Timestamp;
pub use group::{
    ConsumerName, Delivered, Group, GroupConfig, GroupMode, GroupName, GroupStats, PendingInfo,
    StartPosition,
};

/// Partitions a stream may have.
pub const PARTITIONS_MAX: u32 = 1024;
/// Largest record: key + value + header names and values, in bytes.
pub const RECORD_BYTES_MAX: u32 = 1024 * 1024;
/// Records in one append call (the one write batch limit).
pub const APPEND_BATCH_MAX: usize = crate::limits::WRITE_BATCH_MAX;
/// Bytes (as counted for `RECORD_BYTES_MAX`) in one append call.
pub const APPEND_BATCH_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// Records one read, group read or claim may return.
pub const READ_MAX: u32 = 1000;
/// Longest long poll of a read.
pub const WAIT_MS_MAX: u64 = 20_000;
/// Producers whose sequence state a stream keeps; beyond it the least recently seen is
/// forgotten (its next retry would be appended again, as Kafka's producer-id expiry does).
pub const PRODUCERS_MAX: usize = 1000;
/// Batches per producer whose answers are kept, so pipelined retries are answered too (the
/// same window as Kafka's `max.in.flight.requests.per.connection`).
pub const PRODUCER_WINDOW: usize = 5;
/// Headers per record.
pub const HEADERS_MAX: usize = 64;

/// A validated name of a stream, group, consumer or producer: 1–80 characters of
/// `[A-Za-z0-9_-]` (the queue naming rule without the `.fifo` suffix). Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamName(Arc<str>);

impl StreamName {
    pub fn new(name: &str) -> Result<Self, StreamError> {
        check_name("stream", name).map(|()| StreamName(Arc::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), StreamError> {
    let invalid = |reason: String| StreamError::InvalidName {
        what,
        name: name.chars().take(100).collect(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("a name must not be empty".to_string()));
    }
    if name.chars().count() > crate::name::NAME_CHARS_MAX {
        return Err(invalid("a name must be at most 80 characters".to_string()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid(format!(
            "character {bad:?} is not allowed: use A-Z, a-z, 0-9, '-' and '_'"
        )));
    }
    Ok(())
}

/// A stream's attributes. Retention bounds apply per partition; `None` keeps forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamConfig {
    /// 1..=`PARTITIONS_MAX`.
    pub partitions: u32,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub max_records: Option<u64>,
}

impl StreamConfig {
    pub fn validate(&self) -> Result<(), StreamError> {
        if !(1 <= self.partitions && self.partitions <= PARTITIONS_MAX) {
            return Err(StreamError::InvalidParameter {
                field: "partitions",
                reason: format!("must be 1..={PARTITIONS_MAX}, got {}", self.partitions),
            });
        }
        for (field, value) in [
            ("retention_ms", self.retention_ms),
            ("retention_bytes", self.retention_bytes),
            ("max_records", self.max_records),
        ] {
            if value == Some(0) {
                return Err(StreamError::InvalidParameter {
                    field,
                    reason: "must be at least 1 (omit it to keep records forever)".to_string(),
                });
            }
        }
        Ok(())
    }

    /// The attributes in which `self` and `other` differ, as `field is a, requested b`.
    pub fn differences(&self, requested: &StreamConfig) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |field: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{field} is {a}, requested {b}"));
            }
        };
        check(
            "partitions",
            self.partitions.to_string(),
            requested.partitions.to_string(),
        );
        check(
            "retention_ms",
            format!("{:?}", self.retention_ms),
            format!("{:?}", requested.retention_ms),
        );
        check(
            "retention_bytes",
            format!("{:?}", self.retention_bytes),
            format!("{:?}", requested.retention_bytes),
        );
        check(
            "max_records",
            format!("{:?}", self.max_records),
            format!("{:?}", requested.max_records),
        );
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },
    #[error("invalid value for `{field}`: {reason}")]
    InvalidParameter { field: &'static str, reason: String },
    #[error("stream {stream} does not exist")]
    StreamNotFound { stream: String },
    #[error("stream {stream} already exists with different attributes: {differences}")]
    StreamExists { stream: String, differences: String },
    #[error("partition {partition} does not exist: the stream has partitions 0..{partitions}")]
    PartitionOutOfRange { partition: u32, partitions: u32 },
    #[error("offset {offset} of partition {partition} is past its end; the next offset is {next_offset}")]
    OffsetOutOfRange {
        partition: u32,
        offset: u64,
        next_offset: u64,
    },
    #[error("offset {offset} of partition {partition} was removed by retention; the first available offset is {first_offset}")]
    OffsetExpired {
        partition: u32,
        offset: u64,
        first_offset: u64,
    },
    #[error("record {index} is {size_bytes} bytes, over the limit of {limit_bytes} bytes (key, value and headers)")]
    RecordTooLarge {
        index: usize,
        size_bytes: u64,
        limit_bytes: u32,
    },
    #[error("the batch is too large: {reason}")]
    BatchTooLarge { reason: String },
    #[error("producer {producer} sent sequence {sequence}, but sequence {last} was already appended and {sequence} is no longer remembered")]
    ProducerSequenceStale {
        producer: String,
        sequence: u64,
        last: u64,
    },
    #[error("group {group} does not exist on stream {stream}")]
    GroupNotFound { stream: String, group: String },
    #[error("group {group} already exists with different attributes: {differences}")]
    GroupExists { group: String, differences: String },
    #[error("the stream already has {limit} groups")]
    TooManyGroups { limit: usize },
    #[error("group {group} already has {limit} consumers")]
    TooManyConsumers { group: String, limit: usize },
    #[error("consumer {consumer} is not known in group {group}")]
    ConsumerNotFound { group: String, consumer: String },
    #[error("group {group} has {limit} records pending; ack some before reading more")]
    PendingFull { group: String, limit: usize },
    #[error("record {id} is not pending in group {group}")]
    NotPending { group: String, id: String },
    #[error("invalid record id {id:?}: ids look like `partition-offset`, e.g. `0-42`")]
    InvalidRecordId { id: String },
}

/// Where a record sits: its partition and offset. Written `partition-offset` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    pub partition: u32,
    pub offset: u64,
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.partition, self.offset)
    }
}

impl std::str::FromStr for RecordId {
    type Err = StreamError;

    fn from_str(text: &str) -> Result<Self, StreamError> {
        let invalid = || StreamError::InvalidRecordId {
            id: text.chars().take(100).collect(),
        };
        let (partition, offset) = text.split_once('-').ok_or_else(invalid)?;
        Ok(RecordId {
            partition: partition.parse().map_err(|_| invalid())?,
            offset: offset.parse().map_err(|_| invalid())?,
        })
    }
}

/// What the core keeps per record: enough to find, bound and order it, not its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub timestamp: Timestamp,
    pub size_bytes: u32,
    /// The engine's handle to the body (an LSN, or a key into a body map).
    pub location: u64,
}

/// One record of an append as the core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendSpec {
    pub key: Option<Vec<u8>>,
    /// An explicit partition; otherwise the key's hash, otherwise round-robin.
    pub partition: Option<u32>,
    pub size_bytes: u64,
}

/// Where an appended record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub partition: u32,
    pub offset: u64,
    pub timestamp: Timestamp,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// New records; the engine stores their bodies at the locations it handed in.
    Appended(Vec<Appended>),
    /// A retry of a batch already appended: the original answer, nothing changed.
    Duplicate(Vec<Appended>),
}

/// An idempotent producer's claim on a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerSeq {
    pub producer: String,
    pub sequence: u64,
}

/// A read from a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    Offset(u64),
    Time(Timestamp),
}

/// Per-partition figures for stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    pub partition: u32,
    pub first_offset: u64,
    pub next_offset: u64,
    pub records: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    pub records: u64,
    pub bytes: u64,
    pub partitions: Vec<PartitionStats>,
    pub groups: Vec<GroupStats>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Partition {
    pub(crate) first_offset: u64,
    pub(crate) entries: VecDeque<Entry>,
    pub(crate) bytes: u64,
    /// Offsets below this are visible to readers.
    pub(crate) published_end: u64,
}

impl Partition {
    pub(crate) fn next_offset(&self) -> u64 {
        self.first_offset + self.entries.len() as u64
    }

    fn get(&self, offset: u64) -> Option<&Entry> {
        let index = offset.checked_sub(self.first_offset)?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    fn last_timestamp(&self) -> Timestamp {
        self.entries.back().map_or(Timestamp::ZERO, |e| e.timestamp)
    }

    /// The first offset whose timestamp is at or after `time` (the end if none).
    fn offset_at_time(&self, time: Timestamp) -> u64 {
        self.first_offset + self.entries.partition_point(|e| e.timestamp < time) as u64
    }

    fn pop_front(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.first_offset += 1;
        self.bytes -= u64::from(entry.size_bytes);
        Some(entry)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Producer {
    pub(crate) last_seen: Timestamp,
    /// The newest `PRODUCER_WINDOW` batches, oldest first.
    pub(crate) batches: VecDeque<(u64, Vec<Appended>)>,
}

/// The state of one stream, without record bodies.
#[derive(Debug, Clone)]
pub struct Stream {
    name: StreamName,
    config: StreamConfig,
    pub(crate) partitions: Vec<Partition>,
    round_robin: u32,
    pub(crate) groups: BTreeMap<GroupName, Group>,
    producers: BTreeMap<String, Producer>,
}

/// FNV-1a, 64 bits: stable across versions, platforms and processes (unlike `std`'s
/// randomly keyed hasher), which is what key → partition needs.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

impl Stream {
    pub fn new(name: StreamName, config: StreamConfig) -> Result<Self, StreamError> {
        config.validate()?;
        let partitions = (0..config.partitions)
            .map(|_| Partition::default())
            .collect();
        Ok(Stream {
            name,
            config,
            partitions,
            round_robin: 0,
            groups: BTreeMap::new(),
            producers: BTreeMap::new(),
        })
    }

    pub fn name(&self) -> &StreamName {
        &self.name
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    pub fn n_partitions(&self) -> u32 {
        self.config.partitions
    }

    fn partition(&self, partition: u32) -> Result<&Partition, StreamError> {
        self.partitions
            .get(partition as usize)
            .ok_or(StreamError::PartitionOutOfRange {
                partition,
                partitions: self.config.partitions,
            })
    }

    /// `first_offset..next_offset` of `partition`.
    pub fn bounds(&self, partition: u32) -> Result<(u64, u64), StreamError> {
        let p = self.partition(partition)?;
        Ok((p.first_offset, p.next_offset()))
    }

    pub fn entry(&self, id: RecordId) -> Option<&Entry> {
        self.partitions.get(id.partition as usize)?.get(id.offset)
    }

    /// Checks an append batch against every limit without changing anything.
    pub fn check_append(&self, specs: &[AppendSpec]) -> Result<(), StreamError> {
        if specs.is_empty() {
            return Err(StreamError::InvalidParameter {
                field: "records",
                reason: "an append needs at least one record".to_string(),
            });
        }
        if specs.len() > APPEND_BATCH_MAX {
            return Err(StreamError::BatchTooLarge {
                reason: format!(
                    "{} records, at most {APPEND_BATCH_MAX} per call",
                    specs.len()
                ),
            });
        }
        let mut total: u64 = 0;
        for (index, spec) in specs.iter().enumerate() {
            if spec.size_bytes > u64::from(RECORD_BYTES_MAX) {
                return Err(StreamError::RecordTooLarge {
                    index,
                    size_bytes: spec.size_bytes,
                    limit_bytes: RECORD_BYTES_MAX,
                });
            }
            if let Some(partition) = spec.partition {
                self.partition(partition)?;
            }
            total += spec.size_bytes;
        }
        if total > APPEND_BATCH_BYTES_MAX {
            return Err(StreamError::BatchTooLarge {
                reason: format!("{total} bytes, at most {APPEND_BATCH_BYTES_MAX} per call"),
            });
        }
        Ok(())
    }

    /// Appends a batch (all or nothing). `locate(i, &appended)` gives the engine's location of
    /// record `i`'s body. With `producer`, a batch whose sequence was already appended answers
    /// the original offsets and changes nothing.
    pub fn append(
        &mut self,
        now: Timestamp,
        producer: Option<&ProducerSeq>,
        specs: &[AppendSpec],
        mut locate: impl FnMut(usize, &Appended) -> u64,
    ) -> Result<AppendOutcome, StreamError> {
        self.check_append(specs)?;
        if let Some(seq) = producer {
            check_name("producer", &seq.producer)?;
            if let Some(state) = self.producers.get_mut(&seq.producer) {
                if let Some((_, answer)) = state.batches.iter().find(|(s, _)| *s == seq.sequence) {
                    let answer = answer.clone();
                    state.last_seen = state.last_seen.max(now);
                    return Ok(AppendOutcome::Duplicate(answer));
                }
                let last = state.batches.back().map_or(0, |(s, _)| *s);
                if !state.batches.is_empty() && seq.sequence < last {
                    return Err(StreamError::ProducerSequenceStale {
                        producer: seq.producer.clone(),
                        sequence: seq.sequence,
                        last,
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let partition = self.route(spec);
            let p = self
                .partitions
                .get_mut(partition as usize)
                .expect("route returns a partition of this stream");
            let appended = Appended {
                partition,
                offset: p.next_offset(),
                timestamp: now.max(p.last_timestamp()),
            };
            let size_bytes = u32::try_from(spec.size_bytes).expect("checked against the limit");
            p.entries.push_back(Entry {
                timestamp: appended.timestamp,
                size_bytes,
                location: locate(index, &appended),
            });
            p.bytes += u64::from(size_bytes);
            out.push(appended);
        }
        if let Some(seq) = producer {
            self.remember_producer(now, seq, out.clone());
        }
        Ok(AppendOutcome::Appended(out))
    }

    fn route(&mut self, spec: &AppendSpec) -> u32 {
        if let Some(partition) = spec.partition {
            return partition;
        }
        if let Some(key) = &spec.key {
            return (key_hash(key) % u64::from(self.config.partitions)) as u32;
        }
        let partition = self.round_robin % self.config.partitions;
        self.round_robin = (partition + 1) % self.config.partitions;
        partition
    }

    fn remember_producer(&mut self, now: Timestamp, seq: &ProducerSeq, answer: Vec<Appended>) {
        if !self.producers.contains_key(&seq.producer) && self.producers.len() >= PRODUCERS_MAX {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(name, _)| name.clone());
            if let Some(oldest) = oldest {
                self.producers.remove(&oldest);
            }
        }
        let state = self.producers.entry(seq.producer.clone()).or_default();
        state.last_seen = state.last_seen.max(now);
        state.batches.push_back((seq.sequence, answer));
        while state.batches.len() > PRODUCER_WINDOW {
            state.batches.pop_front();
        }
    }

    /// Puts a record recovered from the log back (replay): it must be the partition's next
    /// offset. Unpublished until `publish_all`.
    pub fn restore_entry(&mut self, partition: u32, offset: u64, entry: Entry) -> bool {
        let Some(p) = self.partitions.get_mut(partition as usize) else {
            return false;
        };
        if offset < p.next_offset() {
            return false;
        }
        if p.entries.is_empty() && offset > p.first_offset {
            p.first_offset = offset;
            p.published_end = p.published_end.max(offset);
        }
        if offset != p.next_offset() {
            return false;
        }
        p.bytes += u64::from(entry.size_bytes);
        p.entries.push_back(entry);
        true
    }

    /// Remembers a producer batch recovered from the log (replay).
    pub fn restore_producer_batch(
        &mut self,
        now: Timestamp,
        seq: &ProducerSeq,
        answer: Vec<Appended>,
    ) {
        self.remember_producer(now, seq, answer);
    }

    /// Makes every record whose location is at most `location` visible to readers. The
    /// durable engine calls it once records are on disk; locations grow with offsets.
    pub fn publish_upto(&mut self, location: u64) {
        for p in &mut self.partitions {
            while let Some(entry) = p.get(p.published_end) {
                if entry.location > location {
                    break;
                }
                p.published_end += 1;
            }
        }
    }

    /// Makes every record visible (the in-memory engine, and the end of recovery).
    pub fn publish_all(&mut self) {
        for p in &mut self.partitions {
            p.published_end = p.next_offset();
        }
    }

    /// The published records of `partition` from `from`, at most `max`; returns their ids and
    /// entries, and the offset to read next.
    pub fn read(
        &self,
        partition: u32,
        from: ReadFrom,
        max: u32,
    ) -> Result<(Vec<(u64, Entry)>, u64), StreamError> {
        let p = self.partition(partition)?;
        let start = match from {
            ReadFrom::Offset(offset) => {
                if offset < p.first_offset {
                    return Err(StreamError::OffsetExpired {
                        partition,
                        offset,
                        first_offset: p.first_offset,
                    });
                }
                if offset > p.next_offset() {
                    return Err(StreamError::OffsetOutOfRange {
                        partition,
                        offset,
                        next_offset: p.next_offset(),
                    });
                }
                offset
            }
            ReadFrom::Time(time) => p.offset_at_time(time),
        };
        let end = p.published_end.min(start.saturating_add(u64::from(max)));
        let records = (start..end)
            .filter_map(|offset| p.get(offset).map(|e| (offset, *e)))
            .collect();
        Ok((records, end.max(start)))
    }

    /// Applies retention at `now`; returns the entries removed (the engine frees their
    /// bodies) and, per partition that changed, its new first offset (for the log).
    pub fn enforce_retention(&mut self, now: Timestamp) -> (Vec<Entry>, Vec<(u32, u64)>) {
        let mut removed = Vec::new();
        let mut moved = Vec::new();
        for (index, p) in self.partitions.iter_mut().enumerate() {
            let before = p.first_offset;
            while let Some(front) = p.entries.front() {
                let too_old = self
                    .config
                    .retention_ms
                    .is_some_and(|ms| front.timestamp.plus_ms(ms) <= now);
                let too_big = self
                    .config
                    .retention_bytes
                    .is_some_and(|bytes| p.bytes > bytes);
                let too_many = self
                    .config
                    .max_records
                    .is_some_and(|n| p.entries.len() as u64 > n);
                if !(too_old || too_big || too_many) {
                    break;
                }
                if let Some(entry) = p.pop_front() {
                    removed.push(entry);
                }
            }
            p.published_end = p.published_end.max(p.first_offset);
            if p.first_offset != before {
                moved.push((index as u32, p.first_offset));
            }
        }
        if !moved.is_empty() {
            self.trim_groups();
        }
        (removed, moved)
    }

    /// Removes records below `first_offset` (replay of a logged retention step).
    pub fn trim_to(&mut self, partition: u32, first_offset: u64) -> Vec<Entry> {
        let mut removed = Vec::new();
        if let Some(p) = self.partitions.get_mut(partition as usize) {
            while p.first_offset < first_offset {
                match p.pop_front() {
                    Some(entry) => removed.push(entry),
                    None => {
                        p.first_offset = first_offset;
                        break;
                    }
                }
            }
            p.published_end = p.published_end.max(p.first_offset);
        }
        self.trim_groups();
        removed
    }

    /// Drops pending entries and moves positions past records retention removed.
    fn trim_groups(&mut self) {
        let firsts: Vec<u64> = self.partitions.iter().map(|p| p.first_offset).collect();
        for group in self.groups.values_mut() {
            group.trim(&firsts);
        }
    }

    /// The smallest location any retained record has, if any (the durable engine keeps the
    /// log from there).
    pub fn min_location(&self) -> Option<u64> {
        self.partitions
            .iter()
            .filter_map(|p| p.entries.front().map(|e| e.location))
            .min()
    }

    pub fn stats(&self, now: Timestamp) -> StreamStats {
        let partitions: Vec<PartitionStats> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(index, p)| PartitionStats {
                partition: index as u32,
                first_offset: p.first_offset,
                next_offset: p.next_offset(),
                records: p.entries.len() as u64,
                bytes: p.bytes,
            })
            .collect();
        let ends: Vec<u64> = self.partitions.iter().map(Partition::next_offset).collect();
        StreamStats {
            records: partitions.iter().map(|p| p.records).sum(),
            bytes: partitions.iter().map(|p| p.bytes).sum(),
            partitions,
            groups: self.groups.values().map(|g| g.stats(&ends, now)).collect(),
        }
    }

    // ---- consumer groups ----

    pub fn group(&self, name: &GroupName) -> Result<&Group, StreamError> {
        self.groups
            .get(name)
            .ok_or_else(|| StreamError::GroupNotFound {
                stream: self.name.to_string(),
                group: name.to_string(),
            })
    }

    fn group_mut(&mut self, name: &GroupName) -> Result<&mut Group, StreamError> {
        let stream = self.name.to_string();
        self.groups
            .get_mut(name)
            .ok_or_else(|| StreamError::GroupNotFound {
                stream,
                group: name.to_string(),
            })
    }

    /// Creates a group, or answers `false` for an identical existing one.
    pub fn create_group(
        &mut self,
        name: GroupName,
        config: GroupConfig,
    ) -> Result<bool, StreamError> {
        config.validate()?;
        if let Some(existing) = self.groups.get(&name) {
            let differences = existing.config().differences(&config);
            if differences.is_empty() {
                return Ok(false);
            }
            return Err(StreamError::GroupExists {
                group: name.to_string(),
                differences: differences.join("; "),
            });
        }
        if self.groups.len() >= group::GROUPS_MAX {
            return Err(StreamError::TooManyGroups {
                limit: group::GROUPS_MAX,
            });
        }
        let positions = self.positions_for(config.start, None)?;
        self.groups
            .insert(name.clone(), Group::new(name, config, positions));
        Ok(true)
    }

    /// Puts a group back as it was logged (replay and snapshots).
    pub fn restore_group(&mut self, group: Group) {
        self.groups.insert(group.name().clone(), group);
    }

    pub fn delete_group(&mut self, name: &GroupName) -> Result<(), StreamError> {
        self.group(name)?;
        self.groups.remove(name);
        Ok(())
    }

    /// The position each partition (or only `only`) gets for `start`.
    fn positions_for(
        &self,
        start: StartPosition,
        only: Option<u32>,
    ) -> Result<Vec<(u32, u64)>, StreamError> {
        if let Some(partition) = only {
            self.partition(partition)?;
        }
        if let StartPosition::Offset(offset) = start {
            let max_next = match only {
                Some(partition) => self.partition(partition)?.next_offset(),
                None => self
                    .partitions
                    .iter()
                    .map(Partition::next_offset)
                    .max()
                    .unwrap_or(0),
            };
            if offset > max_next {
                return Err(StreamError::OffsetOutOfRange {
                    partition: only.unwrap_or(0),
                    offset,
                    next_offset: max_next,
                });
            }
        }
        Ok(self
            .partitions
            .iter()
            .enumerate()
            .filter(|(index, _)| only.is_none_or(|o| o as usize == *index))
            .map(|(index, p)| {
                let position = match start {
                    StartPosition::Earliest => p.first_offset,
                    StartPosition::Latest => p.next_offset(),
                    StartPosition::Offset(offset) => offset.clamp(p.first_offset, p.next_offset()),
                    StartPosition::Time(time) => p.offset_at_time(time),
                };
                (index as u32, position)
            })
            .collect())
    }

    /// Moves the group's position (in every partition, or only `partition`); pending records
    /// stay pending. Returns the positions set, for the log.
    pub fn seek(
        &mut self,
        group: &GroupName,
        partition: Option<u32>,
        position: StartPosition,
    ) -> Result<Vec<(u32, u64)>, StreamError> {
        self.group(group)?;
        let positions = self.positions_for(position, partition)?;
        self.group_mut(group)?.set_positions(&positions);
        Ok(positions)
    }

    /// Delivers up to `max` new records to `consumer` from the partitions it owns (or any, in
    /// shared mode) and makes them pending for it.
    pub fn group_read(
        &mut self,
        group: &GroupName,
        consumer: &ConsumerName,
        now: Timestamp,
        max: u32,
    ) -> Result<Vec<Delivered>, StreamError> {
        let published: Vec<u64> = self.partitions.iter().map(|p| p.published_end).collect();
        self.group_mut(group)?.read(consumer, now, max, &published)
    }

    /// Applies logged deliveries (replay).
    pub fn restore_delivered(
        &mut self,
        group: &GroupName,
        consumer: &ConsumerName,
        now: Timestamp,
        ids: &[RecordId],
    ) -> Result<(), StreamError> {
        self.group_mut(group)?.restore_delivered(consumer, now, ids);
        Ok(())
    }

    /// Sets positions exactly as logged (replay of a seek).
    pub fn restore_positions(
        &mut self,
        group: &GroupName,
        positions: &[(u32, u64)],
    ) -> Result<(), StreamError> {
        self.group_mut(group)?.set_positions(positions);
        Ok(())
    }

    pub fn group_ack(
        &mut self,
        group: &GroupName,
        ids: &[RecordId],
    ) -> Result<Vec<Result<(), StreamError>>, StreamError> {
        Ok(self.group_mut(group)?.ack(ids))
    }

    pub fn group_claim(
        &mut self,
        group: &GroupName,
        consumer: &ConsumerName,
        now: Timestamp,
        min_idle_ms: u64,
        max: u32,
    ) -> Result<Vec<Delivered>, StreamError> {
        self.group_mut(group)?
            .claim(consumer, now, min_idle_ms, max)
    }

    /// Applies logged claims (replay).
    pub fn restore_claimed(
        &mut self,
        group: &GroupName,
        consumer: &ConsumerName,
        now: Timestamp,
        ids: &[RecordId],
    ) -> Result<(), StreamError> {
        self.group_mut(group)?.restore_claimed(consumer, now, ids);
        Ok(())
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// The producer state, for snapshots: `(producer, last_seen, batches)`.
    pub fn producers(
        &self,
    ) -> impl Iterator<Item = (&str, Timestamp, &VecDeque<(u64, Vec<Appended>)>)> {
        self.producers
            .iter()
            .map(|(name, p)| (name.as_str(), p.last_seen, &p.batches))
    }

    /// Puts a snapshot's bounds back: per partition `(first_offset, next_offset)` for a
    /// partition without records (so offsets stay monotone when retention removed all), and
    /// the round-robin cursor.
    pub fn restore_bounds(&mut self, bounds: &[(u64, u64)], round_robin: u32) {
        for (p, (first, next)) in self.partitions.iter_mut().zip(bounds) {
            if p.entries.is_empty() {
                p.first_offset = (*next).max(p.first_offset);
                p.published_end = p.first_offset;
            }
            let _ = first;
        }
        self.round_robin = round_robin % self.config.partitions;
    }

    pub fn round_robin(&self) -> u32 {
        self.round_robin
    }
}
