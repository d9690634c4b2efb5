//! `/v1/streams`: the native stream API of DESIGN.md (append, replay, consumer groups), and
//! the conversions between wire types (`baton-proto`) and domain types (`baton-core`).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_core::stream::group::SESSION_TIMEOUT_MS_DEFAULT;
use baton_core::stream::{
    ConsumerName, GroupConfig, GroupMode, GroupName, ProducerSeq, ReadFrom, RecordId,
    StartPosition, READ_MAX,
};
use baton_core::{StreamConfig, StreamName, Timestamp};
use baton_engine::{GroupRecord, GroupView, NewRecord, StreamRecord, StreamView};
use baton_proto::stream as wire;
use baton_proto::{BatchResponse, ItemResult};

use crate::api::error::{stream_code, ApiError};
use crate::api::json::ApiJson;
use crate::api::AppState;

/// Pending entries one `GET .../pending` lists at most (the count covers all).
const PENDING_LIST_MAX: usize = 1000;

pub(crate) fn stream_name(raw: &str) -> Result<StreamName, ApiError> {
    Ok(StreamName::new(raw)?)
}

pub(crate) fn group_name(raw: &str) -> Result<GroupName, ApiError> {
    Ok(GroupName::new(raw)?)
}

pub(crate) fn consumer_name(raw: &str) -> Result<ConsumerName, ApiError> {
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

/// The query string as a map; unknown or repeated parameters are refused.
pub(crate) fn query(
    raw: Option<String>,
    allowed: &[&str],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned() {
        if !allowed.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                key,
                format!("unknown query parameter; allowed: {}", allowed.join(", ")),
            ));
        }
        if out.insert(key.clone(), value).is_some() {
            return Err(ApiError::invalid(key, "given more than once"));
        }
    }
    Ok(out)
}

pub(crate) fn number<T: std::str::FromStr>(
    params: &BTreeMap<String, String>,
    field: &str,
) -> Result<Option<T>, ApiError> {
    params
        .get(field)
        .map(|raw| {
            raw.parse::<T>()
                .map_err(|_| ApiError::invalid(field, format!("{raw:?} is not a valid number")))
        })
        .transpose()
}

pub async fn list(State(state): State<AppState>) -> Result<Json<wire::StreamList>, ApiError> {
    let views = state.engine.list_streams().await?;
    let mut streams = Vec::with_capacity(views.len());
    for view in views {
        streams.push(full_info(&state, view).await);
    }
    Ok(Json(wire::StreamList { streams }))
}

pub async fn create(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    ApiJson(request): ApiJson<wire::CreateStream>,
) -> Result<Response, ApiError> {
    let name = stream_name(&stream)?;
    let config = StreamConfig {
        partitions: request.partitions,
        retention_ms: request.retention_ms,
        retention_bytes: request.retention_bytes,
        max_records: request.max_records,
    };
    let (view, created) = state.engine.create_stream(name, config).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(full_info(&state, view).await)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<wire::StreamInfo>, ApiError> {
    let name = stream_name(&stream)?;
    let view = state.engine.get_stream(&name).await?;
    Ok(Json(full_info(&state, view).await))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = stream_name(&stream)?;
    state.engine.delete_stream(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn append(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    ApiJson(request): ApiJson<wire::AppendRecords>,
) -> Result<Json<wire::AppendResponse>, ApiError> {
    let name = stream_name(&stream)?;
    let producer = match (request.producer_id, request.sequence) {
        (Some(producer), Some(sequence)) => Some(ProducerSeq { producer, sequence }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ApiError::invalid(
                "sequence",
                "required with producer_id: it numbers the producer's batches",
            ))
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid(
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
    let appended = state.engine.append(&name, producer, records).await?;
    Ok(Json(wire::AppendResponse {
        records: appended
            .into_iter()
            .map(|a| wire::AppendedRecord {
                partition: a.partition,
                offset: a.offset,
                timestamp: a.timestamp.as_millis(),
            })
            .collect(),
    }))
}

pub async fn read(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<wire::ReadResponse>, ApiError> {
    let name = stream_name(&stream)?;
    let params = query(
        raw,
        &["partition", "from_offset", "from_time", "max", "wait_ms"],
    )?;
    let partition = number::<u32>(&params, "partition")?.unwrap_or(0);
    let from = match (
        number::<u64>(&params, "from_offset")?,
        number::<u64>(&params, "from_time")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "from_time",
                "give from_offset or from_time, not both",
            ))
        }
        (Some(offset), None) => ReadFrom::Offset(offset),
        (None, Some(time)) => ReadFrom::Time(Timestamp::from_millis(time)),
        (None, None) => {
            return Err(ApiError::invalid(
                "from_offset",
                "required (or from_time): where to start reading",
            ))
        }
    };
    let max = number::<u32>(&params, "max")?.unwrap_or(100);
    let wait_ms = number::<u64>(&params, "wait_ms")?.unwrap_or(0);
    let read = state
        .engine
        .read_stream(&name, partition, from, max, wait_ms)
        .await?;
    Ok(Json(wire::ReadResponse {
        records: read.records.into_iter().map(record_to_wire).collect(),
        next_offset: read.next_offset,
    }))
}

pub async fn create_group(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::CreateGroup>,
) -> Result<Response, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
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
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(group_info(view))).into_response())
}

pub async fn show_group(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
) -> Result<Json<wire::GroupInfo>, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
    Ok(Json(group_info(
        state.engine.get_group(&name, &group).await?,
    )))
}

pub async fn delete_group(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
    state.engine.delete_group(&name, &group).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn group_read(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupRead>,
) -> Result<Json<wire::GroupRecords>, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
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
    Ok(Json(group_records(records)))
}

pub async fn group_ack(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupAck>,
) -> Result<Json<BatchResponse>, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
    let results = ack_results(&state, &name, &group, &request.ids).await?;
    Ok(Json(BatchResponse { results }))
}

/// Acks `ids` in a group: one result per id, in order (malformed or unknown ids are per-item
/// errors; the rest are acked). Used by `POST .../ack` and the group WebSocket.
pub(crate) async fn ack_results(
    state: &AppState,
    name: &StreamName,
    group: &GroupName,
    ids: &[String],
) -> Result<Vec<ItemResult>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::invalid("ids", "an ack needs at least one id"));
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
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<wire::PendingList>, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
    let params = query(raw, &["consumer", "max"])?;
    let consumer = params
        .get("consumer")
        .map(|c| consumer_name(c))
        .transpose()?;
    let max = number::<usize>(&params, "max")?.unwrap_or(PENDING_LIST_MAX);
    if !(1..=PENDING_LIST_MAX).contains(&max) {
        return Err(ApiError::invalid(
            "max",
            format!("must be 1..={PENDING_LIST_MAX}, got {max}"),
        ));
    }
    let pending = state
        .engine
        .group_pending(&name, &group, consumer.as_ref(), max)
        .await?;
    Ok(Json(wire::PendingList {
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
    }))
}

pub async fn group_claim(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupClaim>,
) -> Result<Json<wire::GroupRecords>, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
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
    Ok(Json(group_records(records)))
}

pub async fn group_seek(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupSeek>,
) -> Result<Json<wire::GroupInfo>, ApiError> {
    let name = stream_name(&stream)?;
    let group = group_name(&group)?;
    let view = state
        .engine
        .group_seek(
            &name,
            &group,
            request.partition,
            start_from_wire(request.position),
        )
        .await?;
    Ok(Json(group_info(view)))
}
