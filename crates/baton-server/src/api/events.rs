//! `/api/events/...`: seed A's REST API as a compatibility facade, with its parameter names
//! and defaults (query parameters, camelCase answers). The logic lives in `crate::events`.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use baton_core::Notify;
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::AppState;
use crate::events::{
    EventType, NewEvent, MAX_RETRIES_DEFAULT, MAX_RETRIES_MAX, PERFORMANCE_TEST_COUNT_DEFAULT,
    RETRY_DELAY_MS_DEFAULT, VISIBILITY_TIMEOUT_MS_DEFAULT,
};
use crate::outbound::{self, TargetError};

/// The query string as a map; a parameter not in `known` or given twice is refused.
fn params(
    query: Option<String>,
    known: &[&'static str],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !known.contains(&key.as_ref()) {
            return Err(ApiError::invalid(
                key.to_string(),
                format!("unknown parameter; known: {}", known.join(", ")),
            ));
        }
        if out.insert(key.to_string(), value.to_string()).is_some() {
            return Err(ApiError::invalid(key.to_string(), "given more than once"));
        }
    }
    Ok(out)
}

fn event_type(params: &BTreeMap<String, String>) -> Result<EventType, ApiError> {
    let text = params
        .get("eventType")
        .ok_or_else(|| ApiError::invalid("eventType", "required"))?;
    EventType::parse(text).ok_or_else(|| {
        ApiError::invalid(
            "eventType",
            format!("{text:?} is not one of NOTIFICATION, DATA_PROCESSING, HEAVY_TASK"),
        )
    })
}

fn number(
    params: &BTreeMap<String, String>,
    key: &'static str,
    default: u64,
    lo: u64,
    hi: u64,
) -> Result<u64, ApiError> {
    let Some(text) = params.get(key) else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if lo <= n && n <= hi => Ok(n),
        _ => Err(ApiError::invalid(
            key,
            format!("{text:?} is not a whole number in {lo}..={hi}"),
        )),
    }
}

fn non_empty(params: &BTreeMap<String, String>, key: &'static str) -> Option<String> {
    params.get(key).filter(|v| !v.is_empty()).cloned()
}

/// `callbackHeaders`: a JSON object of strings, or `Name: value` pairs separated by commas.
fn callback_headers(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    let field = "callbackHeaders";
    let pairs: Vec<(String, String)> = if text.trim_start().starts_with('{') {
        let map: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| ApiError::invalid(field, format!("not a JSON object of strings: {e}")))?;
        map.into_iter().collect()
    } else {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|pair| {
                pair.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .ok_or_else(|| {
                        ApiError::invalid(field, format!("{pair:?} is not `Name: value`"))
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let map: BTreeMap<String, String> = pairs.iter().cloned().collect();
    outbound::check_headers(map.iter()).map_err(|(name, reason)| {
        ApiError::invalid(
            name.map_or(field.to_string(), |n| format!("{field}.{n}")),
            reason,
        )
    })?;
    Ok(pairs)
}

pub async fn server_info(State(state): State<AppState>) -> Json<proto::EventServerInfo> {
    Json(proto::EventServerInfo {
        server_id: state.node_id.to_string(),
        host_name: crate::host_name(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
        engine: state.engine.kind().to_string(),
        workers: state.events.settings().workers,
    })
}

pub async fn create(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<proto::Event>, ApiError> {
    let params = params(query, &["eventType", "payload"])?;
    let event = NewEvent::simple(
        event_type(&params)?,
        params.get("payload").cloned().unwrap_or_default(),
    );
    Ok(Json(state.events.create(event).await?))
}

pub async fn create_advanced(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<proto::Event>, ApiError> {
    let params = params(
        query,
        &[
            "eventType",
            "payload",
            "notificationUrl",
            "callbackHeaders",
            "messageGroupId",
            "deduplicationId",
            "maxRetries",
            "retryDelayMs",
            "visibilityTimeoutMs",
        ],
    )?;
    let event_type = event_type(&params)?;
    let max_retries = number(
        &params,
        "maxRetries",
        u64::from(MAX_RETRIES_DEFAULT),
        0,
        u64::from(MAX_RETRIES_MAX),
    )? as u32;
    let retry_delay_ms = number(
        &params,
        "retryDelayMs",
        RETRY_DELAY_MS_DEFAULT,
        0,
        baton_core::limits::VISIBILITY_TIMEOUT_MS_MAX,
    )?;
    let visibility_timeout_ms = number(
        &params,
        "visibilityTimeoutMs",
        VISIBILITY_TIMEOUT_MS_DEFAULT,
        1,
        baton_core::limits::VISIBILITY_TIMEOUT_MS_MAX,
    )?;
    let headers = match non_empty(&params, "callbackHeaders") {
        Some(text) => callback_headers(&text)?,
        None => Vec::new(),
    };
    let notify = match non_empty(&params, "notificationUrl") {
        Some(url) => {
            state.outbound.check_url(&url).map_err(|e| match e {
                TargetError::Invalid(reason) => ApiError::invalid("notificationUrl", reason),
                TargetError::NotAllowed(reason) => ApiError::TargetNotAllowed {
                    field: "notificationUrl".to_string(),
                    reason,
                },
            })?;
            Some(Notify { url, headers })
        }
        None if !headers.is_empty() => {
            return Err(ApiError::invalid(
                "callbackHeaders",
                "given without notificationUrl",
            ))
        }
        None => None,
    };
    let event = NewEvent {
        event_type,
        payload: params.get("payload").cloned().unwrap_or_default(),
        notify,
        group_id: non_empty(&params, "messageGroupId"),
        dedup_id: non_empty(&params, "deduplicationId"),
        max_retries,
        retry_delay_ms,
        visibility_timeout_ms,
    };
    Ok(Json(state.events.create(event).await?))
}

pub async fn status(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<proto::Event>, ApiError> {
    Ok(Json(state.events.status(&event_id).await?))
}

pub async fn queue_info(
    State(state): State<AppState>,
) -> Result<Json<proto::EventQueueInfo>, ApiError> {
    Ok(Json(state.events.queue_info(&state.callbacks).await?))
}

pub async fn retry_callback(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Json<proto::EventCallbackRetry>, ApiError> {
    Ok(Json(
        state
            .events
            .retry_callback(&state.callbacks, &event_id)
            .await?,
    ))
}

pub async fn performance_test(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<proto::PerformanceTestResult>, ApiError> {
    let params = params(query, &["count", "eventType"])?;
    let max = state.events.settings().performance_test_max;
    let count = number(
        &params,
        "count",
        u64::from(PERFORMANCE_TEST_COUNT_DEFAULT.min(max)),
        1,
        u64::from(max),
    )? as u32;
    let event_type = match params.get("eventType") {
        None => EventType::Notification,
        Some(_) => event_type(&params)?,
    };
    Ok(Json(
        state.events.performance_test(count, event_type).await?,
    ))
}
