//! Rebuilding a stream from its log at start-up (and when a stopped log is reopened).

use super::*;

/// Rebuilds a stream from its log, frame by frame.
pub(super) struct Replay {
    name: StreamName,
    stream: Option<Stream>,
    /// Records seen before the first snapshot (their snapshot follows): `(partition, offset,
    /// entry)`.
    early: Vec<(u32, u64, Entry)>,
    /// The append batch being read: its records and LSNs, from `batch_start` on.
    batch: Vec<(StreamRecordV1, u64)>,
    batch_start: u32,
    /// Whether any frame was applied yet.
    started: bool,
    snapshot_lsn: u64,
    deleted: bool,
}

impl Replay {
    fn new(name: StreamName) -> Self {
        Replay {
            name,
            stream: None,
            early: Vec::new(),
            batch: Vec::new(),
            batch_start: 0,
            started: false,
            snapshot_lsn: 0,
            deleted: false,
        }
    }

    fn apply(&mut self, lsn: u64, op: StreamOp) -> Result<(), String> {
        let first_frame = !self.started;
        self.started = true;
        if !matches!(op, StreamOp::Record(_)) && !self.batch.is_empty() {
            // A batch cut short by a crash was never acknowledged: it does not count.
            self.batch.clear();
        }
        match op {
            StreamOp::Record(record) => {
                if record.batch_index == 0 {
                    self.batch.clear();
                    self.batch_start = 0;
                } else if first_frame {
                    // The log starts inside a batch: a segment can begin in the middle of
                    // one, and retention deleted the segment with its first records. They
                    // were written (only a tail can be torn), so the rest counts.
                    self.batch_start = record.batch_index;
                }
                if record.batch_index as usize != self.batch_start as usize + self.batch.len() {
                    self.batch.clear();
                    return Ok(());
                }
                let complete = record.batch_index + 1 == record.batch_len;
                self.batch.push((record, lsn));
                if complete {
                    self.finish_batch();
                }
            }
            StreamOp::Snapshot(snapshot) => {
                self.deleted = false;
                self.snapshot_lsn = lsn;
                self.restore_snapshot(&snapshot)?;
            }
            StreamOp::Deleted => {
                self.deleted = true;
                self.stream = None;
                self.early.clear();
            }
            other => {
                let Some(stream) = self.stream.as_mut() else {
                    // Superseded by the snapshot that follows.
                    return Ok(());
                };
                apply_group_op(stream, other)?;
            }
        }
        Ok(())
    }

    fn finish_batch(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        // A batch whose start retention deleted has no whole answer to remember (the
        // snapshot written before that deletion holds the producer's state).
        let partial = std::mem::take(&mut self.batch_start) > 0;
        let mut answer = Vec::with_capacity(batch.len());
        let mut producer = None;
        let mut now = Timestamp::ZERO;
        for (record, lsn) in &batch {
            let entry = Entry {
                timestamp: Timestamp::from_millis(record.timestamp),
                size_bytes: record_size(record),
                location: *lsn,
            };
            answer.push(Appended {
                partition: record.partition,
                offset: record.offset,
                timestamp: entry.timestamp,
            });
            producer.clone_from(&record.producer);
            now = Timestamp::from_millis(record.now);
            match self.stream.as_mut() {
                Some(stream) => {
                    if !stream.restore_entry(record.partition, record.offset, entry) {
                        tracing::warn!(stream = %self.name, partition = record.partition, offset = record.offset, "skipping a record out of order in the stream log");
                    }
                }
                None => self.early.push((record.partition, record.offset, entry)),
            }
        }
        if let (Some(stream), Some((producer, sequence)), false) =
            (self.stream.as_mut(), producer, partial)
        {
            stream.restore_producer_batch(now, &ProducerSeq { producer, sequence }, answer);
        }
    }

    fn restore_snapshot(&mut self, snapshot: &StreamSnapshotV1) -> Result<(), String> {
        let config = config_from_disk(&snapshot.config);
        let mut early = std::mem::take(&mut self.early);
        if let Some(mut all) = self.stream.take() {
            early.clear();
            all.publish_all();
            for partition in 0..all.n_partitions() {
                let (first, _) = all.bounds(partition).map_err(|e| e.to_string())?;
                let (records, _) = all
                    .read(partition, ReadFrom::Offset(first), u32::MAX)
                    .map_err(|e| e.to_string())?;
                early.extend(records.into_iter().map(|(o, e)| (partition, o, e)));
            }
        }
        let mut stream = Stream::new(self.name.clone(), config).map_err(|e| e.to_string())?;
        for (partition, offset, entry) in early {
            let first = snapshot
                .bounds
                .get(partition as usize)
                .map_or(0, |(first, _)| *first);
            if offset >= first {
                stream.restore_entry(partition, offset, entry);
            }
        }
        stream.restore_bounds(&snapshot.bounds, snapshot.round_robin);
        for group in &snapshot.groups {
            stream.restore_group(group_from_disk(group)?);
        }
        for producer in &snapshot.producers {
            for (sequence, answer) in &producer.batches {
                let answer = answer
                    .iter()
                    .map(|(partition, offset, ts)| Appended {
                        partition: *partition,
                        offset: *offset,
                        timestamp: Timestamp::from_millis(*ts),
                    })
                    .collect();
                stream.restore_producer_batch(
                    Timestamp::from_millis(producer.last_seen),
                    &ProducerSeq {
                        producer: producer.producer.clone(),
                        sequence: *sequence,
                    },
                    answer,
                );
            }
        }
        self.stream = Some(stream);
        Ok(())
    }
}

pub(super) fn apply_group_op(stream: &mut Stream, op: StreamOp) -> Result<(), String> {
    let group_name = |name: &str| GroupName::new(name).map_err(|e| e.to_string());
    let consumer_name = |name: &str| ConsumerName::new(name).map_err(|e| e.to_string());
    match op {
        StreamOp::GroupCreated(group) => stream.restore_group(group_from_disk(&group)?),
        StreamOp::GroupDeleted { group } => {
            let _ = stream.delete_group(&group_name(&group)?);
        }
        StreamOp::Delivered {
            group,
            consumer,
            now,
            ids,
        } => {
            let _ = stream.restore_delivered(
                &group_name(&group)?,
                &consumer_name(&consumer)?,
                Timestamp::from_millis(now),
                &ids_from_disk(&ids),
            );
        }
        StreamOp::Claimed {
            group,
            consumer,
            now,
            ids,
        } => {
            let _ = stream.restore_claimed(
                &group_name(&group)?,
                &consumer_name(&consumer)?,
                Timestamp::from_millis(now),
                &ids_from_disk(&ids),
            );
        }
        StreamOp::Acked { group, ids } => {
            let _ = stream.group_ack(&group_name(&group)?, &ids_from_disk(&ids));
        }
        StreamOp::Seeked { group, positions } => {
            let _ = stream.restore_positions(&group_name(&group)?, &positions);
        }
        StreamOp::Trimmed { firsts } => {
            for (partition, first) in firsts {
                stream.trim_to(partition, first);
            }
        }
        StreamOp::Record(_) | StreamOp::Snapshot(_) | StreamOp::Deleted => {}
    }
    Ok(())
}

pub(super) fn remove_segments(disk: &Disk, dir: &Path) -> Result<(), StreamEngineError> {
    let segments = wal::list_segments(disk.fs.as_ref(), dir)
        .map_err(|e| storage(format!("cannot list {}: {e}", dir.display())))?;
    for (_, path) in segments {
        disk.fs
            .remove(&path)
            .map_err(|e| storage(format!("cannot remove {}: {e}", path.display())))?;
    }
    let _ = disk.fs.sync_dir(dir);
    Ok(())
}

pub(super) fn recover_stream(
    disk: &Disk,
    name: &StreamName,
    dir: &Path,
) -> Result<Option<Arc<Slot>>, StreamEngineError> {
    Ok(recover_stream_state(disk, name, dir)?.map(|state| {
        Arc::new(Slot {
            state: Mutex::new(state),
            published: Notify::new(),
            dir: dir.to_path_buf(),
        })
    }))
}

/// Reads a stream's log back into its state; `None` when the stream was deleted.
pub(super) fn recover_stream_state(
    disk: &Disk,
    name: &StreamName,
    dir: &Path,
) -> Result<Option<State>, StreamEngineError> {
    let segments = wal::list_segments(disk.fs.as_ref(), dir)
        .map_err(|e| storage(format!("cannot list {}: {e}", dir.display())))?;
    let Some((base_lsn, _)) = segments.first().cloned() else {
        return Ok(None);
    };
    let mut replay = Replay::new(name.clone());
    let mut frame_starts = VecDeque::new();
    let mut next_frame_start = 0u64;
    let mode = if disk.repair {
        ReplayMode::Repair
    } else {
        ReplayMode::Recover
    };
    let end = wal::replay_with(
        disk.fs.as_ref(),
        dir,
        base_lsn,
        mode,
        disk.keys.as_deref(),
        |record| {
            frame_starts.push_back(next_frame_start);
            next_frame_start += record.frame_bytes as u64;
            if record.kind != KIND_STREAM_OP {
                return Err(format!("frame kind {} in a stream log", record.kind));
            }
            let op: StreamOp = decode(record.kind, record.payload).map_err(|e| e.to_string())?;
            replay.apply(record.lsn, op)
        },
    )
    .map_err(|e| storage(format!("stream {name}: recovery failed: {e}")))?;
    let Some(mut stream) = replay.stream.take().filter(|_| !replay.deleted) else {
        // Deleted (or created and never made durable): finish removing it.
        remove_segments(disk, dir)?;
        return Ok(None);
    };
    stream.publish_all();
    let wal = open_wal(disk, dir, &end)?;
    let segments = wal::list_segments(disk.fs.as_ref(), dir)
        .map_err(|e| storage(format!("cannot list {}: {e}", dir.display())))?
        .into_iter()
        .map(|(first, _)| first)
        .collect();
    let index = LogIndex {
        wal: Arc::new(wal),
        base_lsn,
        frame_starts,
        next_frame_start,
        segments,
        listed_upto: end.next_lsn.saturating_sub(1),
        snapshot_lsn: replay.snapshot_lsn,
        published_lsn: end.next_lsn.saturating_sub(1),
    };
    tracing::info!(stream = %name, truncated_bytes = end.truncated_bytes, "stream recovered");
    Ok(Some(State {
        stream,
        bodies: Bodies::Disk(index),
        deleted: false,
    }))
}

pub(super) fn open_wal(disk: &Disk, dir: &Path, end: &LogEnd) -> Result<Wal, StreamEngineError> {
    Wal::open(
        disk.fs.clone(),
        WalConfig {
            dir: dir.to_path_buf(),
            sync: disk.sync,
            segment_bytes_max: disk.segment_bytes_max,
            space: Some(disk.space.clone()),
            keys: disk.keys.clone(),
        },
        end,
    )
    .map_err(|e| storage(format!("cannot open the log in {}: {e}", dir.display())))
    .map_err(Into::into)
}
