//! `/api/events/...`: the event API (a Spring Boot event-delegation service's REST API) as a
//! compatibility facade, with its parameter names and defaults (query parameters, camelCase
//! answers, Spring's binding of map parameters). The logic lives in `crate::events`.

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
use crate::service::ServiceError;

/// The query string's pairs, decoded.
fn pairs(query: Option<String>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The pairs as a map; a parameter not in `known` or given twice is refused.
fn params(
    pairs: Vec<(String, String)>,
    known: &[&'static str],
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (key, value) in pairs {
        if !known.contains(&key.as_str()) {
            return Err(ApiError::invalid(
                key,
                format!("unknown parameter; known: {}", known.join(", ")),
            ));
        }
        if out.contains_key(&key) {
            return Err(ApiError::invalid(key, "given more than once"));
        }
        out.insert(key, value);
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

const HEADERS_PARAM: &str = "callbackHeaders";

/// The header name in a map-style `callbackHeaders` key, as Spring binds a `Map` parameter:
/// `callbackHeaders[Name]`, `callbackHeaders['Name']`, `callbackHeaders["Name"]` or
/// `callbackHeaders.Name`. `None` when `key` is not map-style (the plain parameter, or
/// another parameter whose name merely starts the same way).
fn map_key_header(key: &str) -> Option<Result<String, ApiError>> {
    let rest = key.strip_prefix(HEADERS_PARAM)?;
    let refuse = |reason: String| Some(Err(ApiError::invalid(key, reason)));
    let name = if let Some(name) = rest.strip_prefix('.') {
        name
    } else if let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.rfind(']') else {
            return refuse(format!(
                "unclosed bracket; write {HEADERS_PARAM}[Name]=value"
            ));
        };
        if close + 1 != inner.len() {
            return refuse(format!(
                "{:?} follows the closing bracket; write {HEADERS_PARAM}[Name]=value",
                &inner[close + 1..]
            ));
        }
        let inner = &inner[..close];
        match inner.chars().next() {
            Some(quote @ ('\'' | '"')) => match inner[1..].strip_suffix(quote) {
                Some(name) => name,
                None => return refuse(format!("the quote {quote} is not closed")),
            },
            _ => inner,
        }
    } else {
        return None;
    };
    if name.is_empty() {
        return refuse("the header name is empty".to_string());
    }
    Some(Ok(name.to_string()))
}

/// The plain `callbackHeaders` value: a JSON object of strings, or `Name: value` pairs
/// separated by commas.
fn plain_headers(text: &str) -> Result<Vec<(String, String)>, ApiError> {
    if text.trim_start().starts_with('{') {
        let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
            ApiError::invalid(HEADERS_PARAM, format!("not a JSON object of strings: {e}"))
        })?;
        return Ok(map.into_iter().collect());
    }
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    ApiError::invalid(HEADERS_PARAM, format!("{pair:?} is not `Name: value`"))
                })
        })
        .collect()
}

/// Takes every `callbackHeaders` pair (plain and map-style) out of `pairs` and answers the
/// headers they give, checked: valid names and values, each name (in any case) once.
fn callback_headers(pairs: &mut Vec<(String, String)>) -> Result<Vec<(String, String)>, ApiError> {
    let mut headers: Vec<(String, String, String)> = Vec::new();
    let mut plain_seen = false;
    let mut rest = Vec::with_capacity(pairs.len());
    for (key, value) in pairs.drain(..) {
        if key == HEADERS_PARAM {
            if plain_seen {
                return Err(ApiError::invalid(HEADERS_PARAM, "given more than once"));
            }
            plain_seen = true;
            for (name, value) in plain_headers(&value)? {
                headers.push((format!("{HEADERS_PARAM}.{name}"), name, value));
            }
        } else if let Some(name) = map_key_header(&key) {
            headers.push((key, name?, value));
        } else {
            rest.push((key, value));
        }
    }
    *pairs = rest;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (field, name, _) in &headers {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), field.clone()) {
            return Err(ApiError::invalid(
                field.clone(),
                format!("header {name:?} is given more than once (also as {first})"),
            ));
        }
    }
    let map: BTreeMap<String, String> = headers
        .iter()
        .map(|(_, name, value)| (name.clone(), value.clone()))
        .collect();
    outbound::check_headers(map.iter()).map_err(|(name, reason)| {
        let field = name
            .and_then(|n| headers.iter().find(|h| h.1 == n).map(|h| h.0.clone()))
            .unwrap_or_else(|| HEADERS_PARAM.to_string());
        ApiError::invalid(field, reason)
    })?;
    Ok(headers
        .into_iter()
        .map(|(_, name, value)| (name, value))
        .collect())
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
    let params = params(pairs(query), &["eventType", "payload"])?;
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
    let mut pairs = pairs(query);
    let headers = callback_headers(&mut pairs)?;
    let params = params(
        pairs,
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
    let notify = match non_empty(&params, "notificationUrl") {
        Some(url) => {
            state.outbound.check_url(&url).map_err(|e| match e {
                TargetError::Invalid(reason) => ServiceError::invalid("notificationUrl", reason),
                TargetError::NotAllowed(reason) => ServiceError::TargetNotAllowed {
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
    let params = params(pairs(query), &["count", "eventType"])?;
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
