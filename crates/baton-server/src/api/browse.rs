//! `GET /v1/queues/{q}/messages?max=&after=`: browse a queue's live messages without consuming
//! them (the dashboard's message browser). Nothing changes: no lease, no receive count.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use baton_core::limits::PEEK_MAX;
use baton_core::{PeekState, PeekedMessage, QueueName};
use baton_proto as proto;

use crate::api::error::ApiError;
use crate::api::AppState;
use crate::service::queues::attributes_to_wire;

/// Messages per page when `max` is absent.
const PEEK_PAGE_DEFAULT: u32 = 20;

/// The query: `max` (1..=PEEK_MAX, default 20) and `after` (a sequence, default 0). Unknown
/// parameters are refused like unknown JSON fields.
fn parse_query(query: Option<&str>) -> Result<(u32, u64), ApiError> {
    let mut max = PEEK_PAGE_DEFAULT;
    let mut after = 0;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*key {
            "max" => {
                max = value
                    .parse::<u32>()
                    .ok()
                    .filter(|max| (1..=PEEK_MAX).contains(max))
                    .ok_or_else(|| {
                        ApiError::invalid("max", format!("{value:?} is not in 1..={PEEK_MAX}"))
                    })?;
            }
            "after" => {
                after = value.parse::<u64>().map_err(|_| {
                    ApiError::invalid("after", format!("{value:?} is not a sequence number"))
                })?;
            }
            other => {
                return Err(ApiError::Malformed(format!(
                    "unknown query parameter `{other}`: expected `max` or `after`"
                )))
            }
        }
    }
    Ok((max, after))
}

fn peeked_to_wire(message: PeekedMessage) -> proto::PeekedMessage {
    let until = match message.state {
        PeekState::Delayed { until } => Some(until.as_millis()),
        PeekState::InFlight { deadline } => Some(deadline.as_millis()),
        PeekState::Visible => None,
    };
    proto::PeekedMessage {
        id: message.id.to_string(),
        seq: message.seq,
        body: message.body.to_string(),
        attributes: attributes_to_wire(&message.attributes),
        state: message.state.as_str().to_string(),
        until,
        receive_count: message.receive_count,
        sent_at: message.sent_at.as_millis(),
        group_id: message.group_id.map(|g| g.to_string()),
        dedup_id: message.dedup_id.map(|d| d.to_string()),
        dead_letter_source: message.dead_letter_source.map(|q| q.to_string()),
    }
}

pub async fn peek(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<proto::PeekResponse>, ApiError> {
    let name = QueueName::new(&queue)?;
    let (max, after) = parse_query(query.as_deref())?;
    let messages = state.engine.peek(&name, after, max).await?;
    let full_page = messages.len() as u64 == u64::from(max);
    let next_after = messages.last().filter(|_| full_page).map(|m| m.seq);
    Ok(Json(proto::PeekResponse {
        messages: messages.into_iter().map(peeked_to_wire).collect(),
        next_after,
    }))
}
