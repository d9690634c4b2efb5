//! `/v1/streams` over HTTP: parses paths, bodies and query strings, renders the answers;
//! the checks and engine calls are the service layer's (`service::streams`).

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use baton_proto::stream as wire;
use baton_proto::BatchResponse;

use crate::api::error::ApiError;
use crate::api::json::ApiJson;
use crate::auth::Caller;
use crate::service::streams::{self, ReadRequest};
use crate::state::AppState;

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

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// Only the streams the caller's key may see (every stream without keys).
pub async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<wire::StreamList>, ApiError> {
    let mut list = streams::list(&state).await?;
    if let Some(Extension(caller)) = caller {
        list.streams
            .retain(|s| caller.sees(&format!("stream:{}", s.name)));
    }
    Ok(Json(list))
}

pub async fn create(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    ApiJson(request): ApiJson<wire::CreateStream>,
) -> Result<Response, ApiError> {
    let (created, info) = streams::create(&state, &stream, request).await?;
    Ok((created_or_ok(created), Json(info)).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<Json<wire::StreamInfo>, ApiError> {
    Ok(Json(streams::show(&state, &stream).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(stream): Path<String>,
) -> Result<StatusCode, ApiError> {
    streams::delete(&state, &stream).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn append(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    ApiJson(request): ApiJson<wire::AppendRecords>,
) -> Result<Json<wire::AppendResponse>, ApiError> {
    Ok(Json(streams::append(&state, &stream, request).await?))
}

pub async fn read(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<wire::ReadResponse>, ApiError> {
    // The stream's name is checked before the query, as before.
    streams::stream_name(&stream)?;
    let params = query(
        raw,
        &["partition", "from_offset", "from_time", "max", "wait_ms"],
    )?;
    let request = ReadRequest {
        partition: number(&params, "partition")?,
        from_offset: number(&params, "from_offset")?,
        from_time: number(&params, "from_time")?,
        max: number(&params, "max")?,
        wait_ms: number(&params, "wait_ms")?,
    };
    Ok(Json(streams::read(&state, &stream, request).await?))
}

pub async fn create_group(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::CreateGroup>,
) -> Result<Response, ApiError> {
    let (created, info) = streams::create_group(&state, &stream, &group, request).await?;
    Ok((created_or_ok(created), Json(info)).into_response())
}

pub async fn show_group(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
) -> Result<Json<wire::GroupInfo>, ApiError> {
    Ok(Json(streams::show_group(&state, &stream, &group).await?))
}

pub async fn delete_group(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    streams::delete_group(&state, &stream, &group).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn group_read(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupRead>,
) -> Result<Json<wire::GroupRecords>, ApiError> {
    Ok(Json(
        streams::group_read(&state, &stream, &group, request).await?,
    ))
}

pub async fn group_ack(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupAck>,
) -> Result<Json<BatchResponse>, ApiError> {
    Ok(Json(
        streams::group_ack(&state, &stream, &group, request).await?,
    ))
}

pub async fn group_pending(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<wire::PendingList>, ApiError> {
    streams::stream_name(&stream)?;
    streams::group_name(&group)?;
    let params = query(raw, &["consumer", "max"])?;
    let max = number::<usize>(&params, "max")?;
    let consumer = params.get("consumer").map(String::as_str);
    Ok(Json(
        streams::group_pending(&state, &stream, &group, consumer, max).await?,
    ))
}

pub async fn group_claim(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupClaim>,
) -> Result<Json<wire::GroupRecords>, ApiError> {
    Ok(Json(
        streams::group_claim(&state, &stream, &group, request).await?,
    ))
}

pub async fn group_seek(
    State(state): State<AppState>,
    Path((stream, group)): Path<(String, String)>,
    ApiJson(request): ApiJson<wire::GroupSeek>,
) -> Result<Json<wire::GroupInfo>, ApiError> {
    Ok(Json(
        streams::group_seek(&state, &stream, &group, request).await?,
    ))
}
