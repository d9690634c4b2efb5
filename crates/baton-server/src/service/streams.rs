//! Streams, whatever the transport: the checks and conversions of the native stream API
//! (append, replay, consumer groups) done once, between `baton-proto`'s stream shapes and the
//! domain types of `baton-core`, one engine call per operation (a stream's answer adds each
//! group's configuration). Knows no HTTP.

use std::collections::BTreeMap;

use baton_core::stream::group::SESSION_TIMEOUT_MS_DEFAULT;
use baton_core::stream::{
    ConsumerName, GroupConfig, GroupMode, GroupName, ProducerSeq, ReadFrom, RecordId,
    StartPosition, READ_MAX,
};
use baton_core::{StreamConfig, StreamName, Timestamp};
use baton_engine::{
    FencedOutcome, FencedWrite, GroupRecord, GroupView, NewRecord, StreamRecord, StreamView,
};
use baton_proto::stream as wire;
use baton_proto::{BatchResponse, ItemResult};

use crate::service::error::stream_code;
use crate::service::fences;
use crate::service::ServiceError;
use crate::state::AppState;

/// Pending entries one `GET .../pending` lists at most (the count covers all).
pub const PENDING_LIST_MAX: usize = 1000;

pub fn stream_name(raw: &str) -> Result<StreamName, ServiceError> {
    Ok(StreamName::new(raw)?)
}

pub fn group_name(raw: &str) -> Result<GroupName, ServiceError> {
    Ok(GroupName::new(raw)?)
}

pub fn consumer_name(raw: &str) -> Result<ConsumerName, ServiceError> {
    Ok(ConsumerName::new(raw)?)
}

fn start_from_wire(start: wire::StartPosition) -> StartPosition {
    match start {
        wire::StartPosition::Keyword(wire::StartKeyword::Earliest) => StartPosition::Earliest,
        wire::StartPosition::Keyword(wire::StartKeyword::Latest) => StartPosition::Latest,
        wire::StartPosition::Offset { offset } => StartPosition::Offset(offset),
        wire::StartPosition::Time { time } => StartPosition::Time(Timestamp::from_millis(time)),
    }
}

fn start_to_wire(start: StartPosition) -> wire::StartPosition {
    match start {
        StartPosition::Earliest => wire::StartPosition::Keyword(wire::StartKeyword::Earliest),
        StartPosition::Latest => wire::StartPosition::Keyword(wire::StartKeyword::Latest),
        StartPosition::Offset(offset) => wire::StartPosition::Offset { offset },
        StartPosition::Time(time) => wire::StartPosition::Time {
            time: time.as_millis(),
        },
    }
}

fn group_info(view: GroupView) -> wire::GroupInfo {
    let stats = view.stats;
    wire::GroupInfo {
        name: view.name.to_string(),
        start: start_to_wire(view.config.start),
        mode: match view.config.mode {
            GroupMode::Partitioned => wire::GroupMode::Partitioned,
            GroupMode::Shared => wire::GroupMode::Shared,
        },
        session_timeout_ms: view.config.session_timeout_ms,
        stats: wire::GroupStats {
            lag: stats.lag,
            lag_total: stats.lag_total,
            pending: stats.pending,
            consumers: stats
                .consumers
                .into_iter()
                .map(|(name, partitions)| wire::ConsumerInfo {
                    name: name.to_string(),
                    partitions,
                })
                .collect(),
        },
    }
}

fn stream_info(view: StreamView, configs: &BTreeMap<String, GroupConfig>) -> wire::StreamInfo {
    let stats = view.stats;
    wire::StreamInfo {
        name: view.name.to_string(),
        attributes: wire::StreamAttributes {
            partitions: view.config.partitions,
            retention_ms: view.config.retention_ms,
            retention_bytes: view.config.retention_bytes,
            max_records: view.config.max_records,
        },
        stats: wire::StreamStats {
            records: stats.records,
            bytes: stats.bytes,
            partitions: stats
                .partitions
                .into_iter()
                .map(|p| wire::PartitionStats {
                    partition: p.partition,
                    first_offset: p.first_offset,
                    next_offset: p.next_offset,
                    last_offset: (p.records > 0).then(|| p.next_offset - 1),
                    records: p.records,
                    bytes: p.bytes,
                })
                .collect(),
            groups: stats
                .groups
                .into_iter()
                .filter_map(|g| {
                    let config = *configs.get(g.name.as_str())?;
                    Some(group_info(GroupView {
                        name: g.name.clone(),
                        config,
                        stats: g,
                    }))
                })
                .collect(),
        },
    }
}

/// The stream's view with each group's configuration, for `stream_info`.
async fn full_info(state: &AppState, view: StreamView) -> wire::StreamInfo {
    let mut configs = BTreeMap::new();
    for g in &view.stats.groups {
        if let Ok(group) = state.engine.get_group(&view.name, &g.name).await {
            configs.insert(g.name.to_string(), group.config);
        }
    }
    stream_info(view, &configs)
}

pub(crate) fn record_to_wire(record: StreamRecord) -> wire::Record {
    wire::Record {
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp.as_millis(),
        key: record.key,
        value: record.value,
        headers: record.headers.into_iter().collect(),
    }
}

pub(crate) fn group_records(records: Vec<GroupRecord>) -> wire::GroupRecords {
    wire::GroupRecords {
        records: records
            .into_iter()
            .map(|r| wire::GroupRecord {
                id: RecordId {
                    partition: r.record.partition,
                    offset: r.record.offset,
                }
                .to_string(),
                partition: r.record.partition,
                offset: r.record.offset,
                timestamp: r.record.timestamp.as_millis(),
                key: r.record.key,
                value: r.record.value,
                headers: r.record.headers.into_iter().collect(),
                delivery_count: r.delivery_count,
            })
            .collect(),
    }
}

pub async fn list(state: &AppState) -> Result<wire::StreamList, ServiceError> {
    let views = state.engine.list_streams().await?;
    let mut streams = Vec::with_capacity(views.len());
    for view in views {
        streams.push(full_info(state, view).await);
    }
    Ok(wire::StreamList { streams })
}

/// Creates a stream; `true` with a new one, `false` when an equal one existed.
pub async fn create(
    state: &AppState,
    stream: &str,
    request: wire::CreateStream,
) -> Result<(bool, wire::StreamInfo), ServiceError> {
    let name = stream_name(stream)?;
    let config = StreamConfig {
        partitions: request.partitions,
        retention_ms: request.retention_ms,
        retention_bytes: request.retention_bytes,
        max_records: request.max_records,
    };
    let (view, created) = state.engine.create_stream(name, config).await?;
    Ok((created, full_info(state, view).await))
}

pub async fn show(state: &AppState, stream: &str) -> Result<wire::StreamInfo, ServiceError> {
    let name = stream_name(stream)?;
    let view = state.engine.get_stream(&name).await?;
    Ok(full_info(state, view).await)
}

pub async fn delete(state: &AppState, stream: &str) -> Result<(), ServiceError> {
    let name = stream_name(stream)?;
    state.engine.delete_stream(&name).await?;
    Ok(())
}

pub async fn append(
    state: &AppState,
    stream: &str,
    request: wire::AppendRecords,
) -> Result<wire::AppendResponse, ServiceError> {
    let name = stream_name(stream)?;
    let producer = match (request.producer_id, request.sequence) {
        (Some(producer), Some(sequence)) => Some(ProducerSeq { producer, sequence }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ServiceError::invalid(
                "sequence",
                "required with producer_id: it numbers the producer's batches",
            ))
        }
        (None, Some(_)) => {
            return Err(ServiceError::invalid(
                "producer_id",
                "required with sequence: a sequence belongs to a producer",
            ))
        }
    };
    let records = request
        .records
        .into_iter()
        .map(|r| NewRecord {
            key: r.key,
            value: r.value,
            headers: r.headers.into_iter().collect(),
            partition: r.partition,
        })
        .collect();
    let appended = match request.fence {
        Some(fence) => {
            let write = FencedWrite::Append {
                stream: name,
                producer,
                records,
            };
            match fences::write(state, fence, write).await? {
                FencedOutcome::Appended(appended) => appended,
                _ => return Err(fences::mismatch("append")),
            }
        }
        None => state.engine.append(&name, producer, records).await?,
    };
    Ok(wire::AppendResponse {
        records: appended
            .into_iter()
            .map(|a| wire::AppendedRecord {
                partition: a.partition,
                offset: a.offset,
                timestamp: a.timestamp.as_millis(),
            })
            .collect(),
    })
}

/// A replay read as the query of `GET .../records` gives it.
#[derive(Debug, Default)]
pub struct ReadRequest {
    pub partition: Option<u32>,
    pub from_offset: Option<u64>,
    pub from_time: Option<u64>,
    pub max: Option<u32>,
    pub wait_ms: Option<u64>,
}

pub async fn read(
    state: &AppState,
    stream: &str,
    request: ReadRequest,
) -> Result<wire::ReadResponse, ServiceError> {
    let name = stream_name(stream)?;
    let from = match (request.from_offset, request.from_time) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid(
                "from_time",
                "give from_offset or from_time, not both",
            ))
        }
        (Some(offset), None) => ReadFrom::Offset(offset),
        (None, Some(time)) => ReadFrom::Time(Timestamp::from_millis(time)),
        (None, None) => {
            return Err(ServiceError::invalid(
                "from_offset",
                "required (or from_time): where to start reading",
            ))
        }
    };
    let read = state
        .engine
        .read_stream(
            &name,
            request.partition.unwrap_or(0),
            from,
            request.max.unwrap_or(100),
            request.wait_ms.unwrap_or(0),
        )
        .await?;
    Ok(wire::ReadResponse {
        records: read.records.into_iter().map(record_to_wire).collect(),
        next_offset: read.next_offset,
    })
}

/// Creates a consumer group; `true` with a new one.
pub async fn create_group(
    state: &AppState,
    stream: &str,
    group: &str,
    request: wire::CreateGroup,
) -> Result<(bool, wire::GroupInfo), ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    let config = GroupConfig {
        start: start_from_wire(request.start),
        mode: match request.mode.unwrap_or_default() {
            wire::GroupMode::Partitioned => GroupMode::Partitioned,
            wire::GroupMode::Shared => GroupMode::Shared,
        },
        session_timeout_ms: request
            .session_timeout_ms
            .unwrap_or(SESSION_TIMEOUT_MS_DEFAULT),
    };
    let (view, created) = state.engine.create_group(&name, group, config).await?;
    Ok((created, group_info(view)))
}

pub async fn show_group(
    state: &AppState,
    stream: &str,
    group: &str,
) -> Result<wire::GroupInfo, ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    Ok(group_info(state.engine.get_group(&name, &group).await?))
}

pub async fn delete_group(state: &AppState, stream: &str, group: &str) -> Result<(), ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    state.engine.delete_group(&name, &group).await?;
    Ok(())
}

pub async fn group_read(
    state: &AppState,
    stream: &str,
    group: &str,
    request: wire::GroupRead,
) -> Result<wire::GroupRecords, ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    let consumer = consumer_name(&request.consumer)?;
    let records = state
        .engine
        .group_read(
            &name,
            &group,
            &consumer,
            request.max.unwrap_or(1),
            request.wait_ms.unwrap_or(0),
        )
        .await?;
    Ok(group_records(records))
}

pub async fn group_ack(
    state: &AppState,
    stream: &str,
    group: &str,
    request: wire::GroupAck,
) -> Result<BatchResponse, ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    let results = ack_results(state, &name, &group, &request.ids, request.fence).await?;
    Ok(BatchResponse { results })
}

/// Acks `ids` in a group: one result per id, in order (malformed or unknown ids are per-item
/// errors; the rest are acked), only while `fence` holds when given. Used by `POST .../ack`
/// and the group WebSocket.
pub async fn ack_results(
    state: &AppState,
    name: &StreamName,
    group: &GroupName,
    ids: &[String],
    fence: Option<baton_proto::Fence>,
) -> Result<Vec<ItemResult>, ServiceError> {
    if ids.is_empty() {
        return Err(ServiceError::invalid("ids", "an ack needs at least one id"));
    }
    // Malformed ids are per-item errors, like unknown ones; the rest are acked.
    let parsed: Vec<Result<RecordId, baton_core::StreamError>> =
        ids.iter().map(|id| id.parse()).collect();
    let valid: Vec<RecordId> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok().copied())
        .collect();
    let mut acked = if valid.is_empty() {
        // Still checks that the stream and group exist.
        state.engine.get_group(name, group).await?;
        Vec::new()
    } else if let Some(fence) = fence {
        let write = FencedWrite::GroupAck {
            stream: name.clone(),
            group: group.clone(),
            ids: valid,
        };
        match fences::write(state, fence, write).await? {
            FencedOutcome::GroupAcked(acked) => acked,
            _ => return Err(fences::mismatch("group ack")),
        }
    } else {
        state.engine.group_ack(name, group, valid).await?
    }
    .into_iter();
    let results = parsed
        .into_iter()
        .map(|p| {
            let outcome = match p {
                Ok(_) => acked.next().unwrap_or(Ok(())),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => ItemResult::ok(),
                Err(error) => ItemResult::error(stream_code(&error), error.to_string()),
            }
        })
        .collect();
    Ok(results)
}

pub async fn group_pending(
    state: &AppState,
    stream: &str,
    group: &str,
    consumer: Option<&str>,
    max: Option<usize>,
) -> Result<wire::PendingList, ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    let consumer = consumer.map(consumer_name).transpose()?;
    let max = max.unwrap_or(PENDING_LIST_MAX);
    if !(1..=PENDING_LIST_MAX).contains(&max) {
        return Err(ServiceError::invalid(
            "max",
            format!("must be 1..={PENDING_LIST_MAX}, got {max}"),
        ));
    }
    let pending = state
        .engine
        .group_pending(&name, &group, consumer.as_ref(), max)
        .await?;
    Ok(wire::PendingList {
        count: pending.count,
        pending: pending
            .entries
            .into_iter()
            .map(|p| wire::PendingEntry {
                id: p.id.to_string(),
                consumer: p.consumer.to_string(),
                idle_ms: p.idle_ms,
                delivery_count: p.delivery_count,
            })
            .collect(),
    })
}

pub async fn group_claim(
    state: &AppState,
    stream: &str,
    group: &str,
    request: wire::GroupClaim,
) -> Result<wire::GroupRecords, ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    let consumer = consumer_name(&request.consumer)?;
    let records = state
        .engine
        .group_claim(
            &name,
            &group,
            &consumer,
            request.min_idle_ms,
            request.max.unwrap_or(READ_MAX.min(100)),
        )
        .await?;
    Ok(group_records(records))
}

pub async fn group_seek(
    state: &AppState,
    stream: &str,
    group: &str,
    request: wire::GroupSeek,
) -> Result<wire::GroupInfo, ServiceError> {
    let name = stream_name(stream)?;
    let group = group_name(group)?;
    let view = state
        .engine
        .group_seek(
            &name,
            &group,
            request.partition,
            start_from_wire(request.position),
        )
        .await?;
    Ok(group_info(view))
}
