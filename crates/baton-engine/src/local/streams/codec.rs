//! The stream log's domain ↔ record conversions: configuration, start positions, record ids,
//! groups and snapshots.

use super::*;

pub(super) fn config_to_disk(config: &StreamConfig) -> StreamConfigV1 {
    StreamConfigV1 {
        partitions: config.partitions,
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        max_records: config.max_records,
    }
}

pub(super) fn config_from_disk(config: &StreamConfigV1) -> StreamConfig {
    StreamConfig {
        partitions: config.partitions,
        retention_ms: config.retention_ms,
        retention_bytes: config.retention_bytes,
        max_records: config.max_records,
    }
}

pub(super) fn start_to_disk(start: StartPosition) -> StartV1 {
    match start {
        StartPosition::Earliest => StartV1::Earliest,
        StartPosition::Latest => StartV1::Latest,
        StartPosition::Offset(offset) => StartV1::Offset(offset),
        StartPosition::Time(time) => StartV1::Time(time.as_millis()),
    }
}

pub(super) fn start_from_disk(start: StartV1) -> StartPosition {
    match start {
        StartV1::Earliest => StartPosition::Earliest,
        StartV1::Latest => StartPosition::Latest,
        StartV1::Offset(offset) => StartPosition::Offset(offset),
        StartV1::Time(ms) => StartPosition::Time(Timestamp::from_millis(ms)),
    }
}

pub(super) fn ids_to_disk(ids: &[RecordId]) -> Vec<(u32, u64)> {
    ids.iter().map(|id| (id.partition, id.offset)).collect()
}

pub(super) fn ids_from_disk(ids: &[(u32, u64)]) -> Vec<RecordId> {
    ids.iter()
        .map(|(partition, offset)| RecordId {
            partition: *partition,
            offset: *offset,
        })
        .collect()
}

pub(super) fn group_to_disk(group: &Group) -> GroupV1 {
    GroupV1 {
        name: group.name().to_string(),
        start: start_to_disk(group.config().start),
        shared: group.config().mode == GroupMode::Shared,
        session_timeout_ms: group.config().session_timeout_ms,
        positions: group.positions().to_vec(),
        pending: group
            .pending_entries()
            .map(|(id, consumer, at, count)| PendingV1 {
                partition: id.partition,
                offset: id.offset,
                consumer: consumer.to_string(),
                delivered_at: at.as_millis(),
                delivery_count: count,
            })
            .collect(),
    }
}

pub(super) fn group_from_disk(group: &GroupV1) -> Result<Group, String> {
    let name = GroupName::new(&group.name).map_err(|e| e.to_string())?;
    let config = GroupConfig {
        start: start_from_disk(group.start),
        mode: if group.shared {
            GroupMode::Shared
        } else {
            GroupMode::Partitioned
        },
        session_timeout_ms: group.session_timeout_ms,
    };
    let mut pending = Vec::with_capacity(group.pending.len());
    for p in &group.pending {
        pending.push((
            RecordId {
                partition: p.partition,
                offset: p.offset,
            },
            ConsumerName::new(&p.consumer).map_err(|e| e.to_string())?,
            Timestamp::from_millis(p.delivered_at),
            p.delivery_count,
        ));
    }
    Ok(Group::restore(
        name,
        config,
        group.positions.clone(),
        pending,
    ))
}

pub(super) fn snapshot(stream: &Stream, now: Timestamp) -> StreamOp {
    StreamOp::Snapshot(StreamSnapshotV1 {
        name: stream.name().to_string(),
        config: config_to_disk(stream.config()),
        bounds: (0..stream.n_partitions())
            .map(|p| stream.bounds(p).unwrap_or((0, 0)))
            .collect(),
        round_robin: stream.round_robin(),
        groups: stream.groups().map(group_to_disk).collect(),
        producers: stream
            .producers()
            .map(|(producer, last_seen, batches)| ProducerV1 {
                producer: producer.to_string(),
                last_seen: last_seen.as_millis(),
                batches: batches
                    .iter()
                    .map(|(seq, answer)| {
                        (
                            *seq,
                            answer
                                .iter()
                                .map(|a| (a.partition, a.offset, a.timestamp.as_millis()))
                                .collect(),
                        )
                    })
                    .collect(),
            })
            .collect(),
        now: now.as_millis(),
    })
}

pub(super) fn record_size(record: &StreamRecordV1) -> u32 {
    let headers: usize = record.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    (record.key.as_ref().map_or(0, String::len) + record.value.len() + headers) as u32
}
