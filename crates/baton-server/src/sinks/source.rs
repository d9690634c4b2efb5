//! Reading a sink's source into batches, and what happens to the source once a batch is
//! committed in PostgreSQL.
//!
//! - A stream without a group is read by offset from the positions stored in PostgreSQL; the
//!   batch carries each partition's move, which commits with the rows. A restart reads the
//!   positions again, so nothing is skipped or written twice.
//! - A stream with a group, a queue and a topic (through the sink's internal queue) are read
//!   as a consumer: the rows commit first, then the records or messages are acked. A crash in
//!   between delivers them again and their rows are skipped by the row key.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use baton_core::stream::{ConsumerName, GroupName, ReadFrom, RecordId};
use baton_core::{QueueName, ReceiptHandle, StreamError, StreamName};
use baton_engine::StreamEngineError;
use baton_engine::{Engine, EngineError, ReceiveOptions};

use crate::sinks::postgres::{Db, PgError, PositionMove};
use crate::sinks::rows::Row;
use crate::sinks::spec::{SinkSpec, Source};

/// A batch's rows stop growing past this many bytes (a queue receive may pass it by one
/// receive's messages).
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;
/// How long one read waits at the head of an idle source.
const IDLE_WAIT_MS: u64 = 1_000;
/// Most records one stream or group read asks for (the engine's read limit).
const READ_MAX: u32 = baton_core::stream::READ_MAX;
/// Most messages one queue receive takes: with 1 MiB messages a receive adds at most this
/// many MiB to a batch.
const RECEIVE_MAX: u32 = 100;
/// The lease of a message the sink holds; a crash or restart returns it after this.
pub const LEASE_MS: u64 = 60_000;
/// Streams with more partitions than this are polled instead of long-polled per partition.
const LONG_POLL_PARTITIONS_MAX: usize = 64;
const POLL_PAUSE: Duration = Duration::from_millis(100);

/// Why a sink could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Pg(#[from] PgError),
    #[error("source: {0}")]
    Source(#[from] EngineError),
    #[error("source: {0}")]
    StreamSource(#[from] baton_engine::StreamEngineError),
    #[error("PostgreSQL did not answer within {0} ms")]
    Timeout(u64),
}

/// What to tell the source once a batch is committed.
#[derive(Debug, Default)]
pub enum Acks {
    #[default]
    None,
    Queue(Vec<ReceiptHandle>),
    Group(Vec<RecordId>),
}

/// Rows on their way, with what committing them means for the source.
#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Row>,
    pub bytes: usize,
    ids: HashSet<String>,
    /// Stream without a group: each partition's move.
    pub moves: Vec<PositionMove>,
    pub acks: Acks,
    /// Collected completely (full, or its flush time passed); only then is it written.
    pub sealed: bool,
}

impl Batch {
    /// Adds `row` unless a row with its id is already in the batch (a message delivered
    /// again while its first delivery waits here).
    fn push(&mut self, row: Row) {
        if self.ids.insert(row.id.clone()) {
            self.bytes += row.size_bytes();
            self.rows.push(row);
        }
    }
}

/// The reading side of one sink.
pub enum Reader {
    Offsets {
        stream: StreamName,
        /// Per partition: the stored next offset (`None`: nothing stored yet).
        committed: Vec<Option<u64>>,
        /// Per partition: the next offset to read.
        cursor: Vec<u64>,
        /// Records retention removed before the sink read them.
        expired: u64,
    },
    Group {
        stream: StreamName,
        group: GroupName,
        consumer: ConsumerName,
        /// Pending records of an earlier session are claimed first.
        claim: bool,
    },
    Queue {
        queue: QueueName,
    },
}

impl Reader {
    pub fn new(spec: &SinkSpec) -> Reader {
        match &spec.source {
            Source::Stream(stream) => Reader::Offsets {
                stream: stream.clone(),
                committed: Vec::new(),
                cursor: Vec::new(),
                expired: 0,
            },
            Source::Group(stream, group) => Reader::Group {
                stream: stream.clone(),
                group: group.clone(),
                consumer: consumer_name(&spec.name),
                claim: true,
            },
            Source::Queue(queue) => Reader::Queue {
                queue: queue.clone(),
            },
            Source::Topic(..) => Reader::Queue {
                queue: spec.internal_queue(),
            },
        }
    }

    /// The stream whose positions the batches move, if any.
    pub fn positions_stream(&self) -> Option<&str> {
        match self {
            Reader::Offsets { stream, .. } => Some(stream.as_str()),
            _ => None,
        }
    }

    /// A stream source's committed positions.
    pub fn positions(&self) -> Option<&[Option<u64>]> {
        match self {
            Reader::Offsets { committed, .. } => Some(committed),
            _ => None,
        }
    }

    /// Records removed by retention before the sink read them, since the server started.
    pub fn expired(&self) -> u64 {
        match self {
            Reader::Offsets { expired, .. } => *expired,
            _ => 0,
        }
    }

    /// Starts a session on a fresh connection: a stream reader loads its positions and drops
    /// an uncommitted batch (it is read again from the positions); a consumer claims what an
    /// earlier session left pending, and keeps its batch (written again, duplicates skip).
    pub async fn start(
        &mut self,
        engine: &dyn Engine,
        spec: &SinkSpec,
        db: &Db,
        pending: &mut Batch,
    ) -> Result<(), SinkError> {
        match self {
            Reader::Offsets {
                stream,
                committed,
                cursor,
                ..
            } => {
                *pending = Batch::default();
                let view = engine.get_stream(stream).await?;
                let stored = db.positions(spec, stream.as_str()).await?;
                *committed = (0..view.config.partitions)
                    .map(|p| stored.get(&p).copied())
                    .collect();
                *cursor = view
                    .stats
                    .partitions
                    .iter()
                    .zip(committed.iter())
                    .map(|(stats, stored)| stored.unwrap_or(stats.first_offset))
                    .collect();
                cursor.resize(committed.len(), 0);
            }
            Reader::Group { claim, .. } => *claim = true,
            Reader::Queue { .. } => {}
        }
        Ok(())
    }

    /// Fills `batch` until it holds `batch_max` rows or about [`BATCH_BYTES_MAX`] bytes, or
    /// `flush_ms` passed since its first row; waits as long as the source is empty.
    pub async fn collect(
        &mut self,
        engine: &dyn Engine,
        spec: &SinkSpec,
        batch: &mut Batch,
    ) -> Result<(), SinkError> {
        let max = spec.batch_max as usize;
        let flush = Duration::from_millis(spec.flush_ms);
        let mut first_at = (!batch.rows.is_empty()).then(Instant::now);
        loop {
            let wait_ms = match first_at {
                None => IDLE_WAIT_MS,
                Some(t) => flush.saturating_sub(t.elapsed()).as_millis() as u64,
            };
            self.fetch(
                engine,
                spec,
                batch,
                max - batch.rows.len().min(max),
                wait_ms,
            )
            .await?;
            if batch.rows.is_empty() {
                // A source can answer at once with nothing (the engine shutting down, a
                // wait that was woken by a record read next pass): give the runtime a turn
                // so this loop never starves the tasks that would stop it.
                tokio::task::yield_now().await;
                continue;
            }
            let first = *first_at.get_or_insert_with(Instant::now);
            if max <= batch.rows.len() || BATCH_BYTES_MAX <= batch.bytes || flush <= first.elapsed()
            {
                batch.sealed = true;
                return Ok(());
            }
        }
    }

    async fn fetch(
        &mut self,
        engine: &dyn Engine,
        spec: &SinkSpec,
        batch: &mut Batch,
        room: usize,
        wait_ms: u64,
    ) -> Result<(), SinkError> {
        if room == 0 {
            return Ok(());
        }
        let room = room.min(u32::MAX as usize) as u32;
        let source = spec.source.name();
        match self {
            Reader::Offsets { .. } => {
                self.fetch_offsets(engine, source, batch, room, wait_ms)
                    .await
            }
            Reader::Group {
                stream,
                group,
                consumer,
                claim,
            } => {
                let n = room.min(READ_MAX);
                let mut records = Vec::new();
                if *claim {
                    records = engine.group_claim(stream, group, consumer, 0, n).await?;
                    *claim = !records.is_empty();
                }
                if records.is_empty() {
                    records = engine
                        .group_read(stream, group, consumer, n, wait_ms)
                        .await?;
                }
                let mut ids = Vec::with_capacity(records.len());
                for record in records {
                    ids.push(RecordId {
                        partition: record.record.partition,
                        offset: record.record.offset,
                    });
                    batch.push(Row::from_record(source, &record.record));
                }
                if let Acks::Group(acks) = &mut batch.acks {
                    acks.extend(ids);
                } else {
                    batch.acks = Acks::Group(ids);
                }
                Ok(())
            }
            Reader::Queue { queue } => {
                let options = ReceiveOptions {
                    max: room.min(RECEIVE_MAX),
                    wait_ms: Some(wait_ms.min(baton_core::limits::WAIT_MS_MAX)),
                    visibility_timeout_ms: Some(LEASE_MS),
                };
                let deliveries = engine.receive(queue, options).await?;
                let mut receipts = Vec::with_capacity(deliveries.len());
                for delivery in deliveries {
                    receipts.push(delivery.receipt);
                    batch.push(Row::from_delivery(source, &delivery));
                }
                if let Acks::Queue(acks) = &mut batch.acks {
                    acks.extend(receipts);
                } else {
                    batch.acks = Acks::Queue(receipts);
                }
                Ok(())
            }
        }
    }

    /// One pass over every partition from its cursor; when it finds nothing, waits (up to
    /// `wait_ms`) for any partition to get a record.
    async fn fetch_offsets(
        &mut self,
        engine: &dyn Engine,
        source: &str,
        batch: &mut Batch,
        room: u32,
        wait_ms: u64,
    ) -> Result<(), SinkError> {
        let Reader::Offsets {
            stream,
            committed,
            cursor,
            expired,
        } = self
        else {
            return Ok(());
        };
        let before = batch.rows.len();
        for partition in 0..cursor.len() {
            let taken = (batch.rows.len() - before) as u32;
            if room <= taken || BATCH_BYTES_MAX <= batch.bytes {
                break;
            }
            let p = partition as u32;
            let from = cursor[partition];
            let read = match engine
                .read_stream(
                    stream,
                    p,
                    ReadFrom::Offset(from),
                    (room - taken).min(READ_MAX),
                    0,
                )
                .await
            {
                Ok(read) => read,
                Err(StreamEngineError::Stream(StreamError::OffsetExpired {
                    first_offset, ..
                })) => {
                    *expired += first_offset.saturating_sub(from);
                    cursor[partition] = first_offset;
                    note_move(batch, p, committed[partition], first_offset);
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            for record in &read.records {
                if BATCH_BYTES_MAX <= batch.bytes {
                    break;
                }
                batch.push(Row::from_record(source, record));
                cursor[partition] = record.offset + 1;
            }
            if cursor[partition] != from {
                note_move(batch, p, committed[partition], cursor[partition]);
            }
        }
        if batch.rows.len() > before || wait_ms == 0 {
            return Ok(());
        }
        let wait_ms = wait_ms.min(baton_core::stream::WAIT_MS_MAX);
        if cursor.len() > LONG_POLL_PARTITIONS_MAX {
            tokio::time::sleep(POLL_PAUSE.min(Duration::from_millis(wait_ms))).await;
            return Ok(());
        }
        let waits = cursor.iter().enumerate().map(|(p, from)| {
            Box::pin(engine.read_stream(stream, p as u32, ReadFrom::Offset(*from), 1, wait_ms))
        });
        // The records are read by the next pass; this only waits for one to exist.
        let _ = futures::future::select_all(waits).await;
        Ok(())
    }

    /// After a commit: the stored positions are where the batch moved them.
    pub fn committed(&mut self, batch: &Batch) {
        if let Reader::Offsets { committed, .. } = self {
            for m in &batch.moves {
                if let Some(slot) = committed.get_mut(m.partition as usize) {
                    *slot = Some(m.next);
                }
            }
        }
    }

    /// After a commit: acks what the batch read; a failed ack only means a redelivery,
    /// whose rows are skipped as duplicates.
    pub async fn ack(&self, engine: &dyn Engine, batch: Batch) {
        match (self, batch.acks) {
            (Reader::Queue { queue }, Acks::Queue(receipts)) if !receipts.is_empty() => {
                if let Err(error) = engine.ack(queue, receipts).await {
                    tracing::warn!(queue = %queue, %error, "sink ack failed; the messages come again and are skipped");
                }
            }
            (Reader::Group { stream, group, .. }, Acks::Group(ids)) if !ids.is_empty() => {
                if let Err(error) = engine.group_ack(stream, group, ids).await {
                    tracing::warn!(stream = %stream, %error, "sink group ack failed; the records come again and are skipped");
                }
            }
            _ => {}
        }
    }

    /// Gives back the leases of a batch that will not be written now (the sink stops).
    pub async fn release(&self, engine: &dyn Engine, batch: Batch) {
        if let (Reader::Queue { queue }, Acks::Queue(receipts)) = (self, batch.acks) {
            if !receipts.is_empty() {
                let _ = engine.nack(queue, receipts, Some(0)).await;
            }
        }
    }
}

/// Messages of `spec`'s source not yet in the table, as far as the engine can tell;
/// `positions`: a stream source's committed offsets (missing ones count from the start).
pub async fn lag(
    engine: &dyn Engine,
    spec: &SinkSpec,
    positions: &[Option<u64>],
) -> Result<u64, crate::service::ServiceError> {
    match &spec.source {
        Source::Stream(stream) => {
            let view = engine.get_stream(stream).await?;
            Ok(view
                .stats
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let from = positions
                        .get(i)
                        .copied()
                        .flatten()
                        .unwrap_or(p.first_offset);
                    p.next_offset.saturating_sub(from)
                })
                .sum())
        }
        Source::Group(stream, group) => {
            let view = engine.get_group(stream, group).await?;
            Ok(view.stats.lag_total + view.stats.pending)
        }
        Source::Queue(_) | Source::Topic(..) => {
            let queue = match &spec.source {
                Source::Queue(queue) => queue.clone(),
                _ => spec.internal_queue(),
            };
            let view = engine.get_queue(&queue).await?;
            Ok(view.stats.visible + view.stats.delayed + view.stats.in_flight)
        }
    }
}

/// Records that `partition` moves to `next` in this batch (from its stored position).
fn note_move(batch: &mut Batch, partition: u32, expected: Option<u64>, next: u64) {
    match batch.moves.iter_mut().find(|m| m.partition == partition) {
        Some(m) => m.next = next,
        None => batch.moves.push(PositionMove {
            partition,
            expected,
            next,
        }),
    }
}

/// The consumer name a sink reads its group with.
pub fn consumer_name(sink: &str) -> ConsumerName {
    let name = format!("baton-sink-{sink}");
    ConsumerName::new(&name)
        .or_else(|_| ConsumerName::new("baton-sink"))
        .unwrap_or_else(|_| unreachable!("`baton-sink` is a valid consumer name"))
}
