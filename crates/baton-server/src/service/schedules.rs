//! Schedules: the checks and conversions of `/v1/schedules` (and the CLI, the dashboard), and
//! the one function that sends a firing, shared by the firing task (`crate::schedules`) and
//! `POST .../fire`.
//!
//! A put is checked whole before anything changes: the name, exactly one of `cron`/`at`,
//! the time zone, the `missed` policy, exactly one target that exists, a message the target
//! accepts (attribute names, a FIFO queue's `group_id`, a topic's routing key), then the
//! table's own rules (`ScheduleTable::check_spec`: never-firing patterns, an `at` not in the
//! future, the window, the message size, `schedules_max`).
//!
//! Every firing carries the attributes `baton.schedule` and `baton.fire_time` (a stream's
//! headers). A tick's send carries the dedup id `schedule:<name>:<tick>`: to a queue as its
//! `dedup_id`, to a topic as every copy's `dedup_id`, to a stream as the idempotent producer
//! `schedule:<name>` with the tick as its sequence. A manual firing is not a tick: it gets
//! `schedule:<name>:<now>m` (queues and topics) and no producer (streams), so every press
//! sends once more.

use std::collections::BTreeMap;
use std::sync::Arc;

use baton_core::schedule::{
    self, CronTiming, FireOutcome, Missed, Schedule, ScheduleName, ScheduleSpec, ScheduledMessage,
    Target, Timing,
};
use baton_core::stream::ProducerSeq;
use baton_core::topic::RoutingKey;
use baton_core::{QueueName, SendEntry, StreamName, Timestamp};
use baton_engine::StreamEngineError;
use baton_engine::TopicEngineError;
use baton_engine::{EngineError, NewRecord, ScheduleEngineError};
use baton_proto as proto;

use super::queues::attributes_from_wire;
use super::ServiceError;
use crate::state::AppState;

/// Fire times a schedule's answer lists.
pub const NEXT_FIRES_SHOWN: usize = 5;

fn schedule_error(error: schedule::ScheduleError) -> ServiceError {
    ServiceError::Schedule(ScheduleEngineError::Schedule(error))
}

pub fn schedule_name(state: &AppState, raw: &str) -> Result<ScheduleName, ServiceError> {
    ScheduleName::new(raw, &state.engine.schedule_limits()).map_err(schedule_error)
}

/// An instant of the API (milliseconds or RFC 3339) as a timestamp.
fn instant(field: &str, value: proto::Instant) -> Result<Timestamp, ServiceError> {
    match value {
        proto::Instant::Millis(ms) => Ok(Timestamp::from_millis(ms)),
        proto::Instant::Text(text) => {
            let parsed = chrono::DateTime::parse_from_rfc3339(&text).map_err(|e| {
                ServiceError::invalid(
                    field,
                    format!("{text:?} is neither milliseconds since the epoch nor an RFC 3339 time ({e})"),
                )
            })?;
            u64::try_from(parsed.timestamp_millis())
                .map(Timestamp::from_millis)
                .map_err(|_| ServiceError::invalid(field, "times before 1970 are not allowed"))
        }
    }
}

fn timing(request: &proto::PutSchedule) -> Result<Timing, ServiceError> {
    match (&request.cron, &request.at) {
        (Some(cron), None) => CronTiming::new(cron, request.timezone.as_deref())
            .map(Timing::Cron)
            .map_err(schedule_error),
        (None, Some(at)) => {
            if request.timezone.is_some() {
                return Err(ServiceError::invalid(
                    "timezone",
                    "only a cron schedule has a time zone; `at` is an instant (give an RFC 3339 offset instead)",
                ));
            }
            instant("at", at.clone()).map(Timing::At)
        }
        (Some(_), Some(_)) => Err(ServiceError::invalid(
            "at",
            "give either `cron` or `at`, not both",
        )),
        (None, None) => Err(ServiceError::invalid(
            "cron",
            "a schedule needs `cron` (repeating) or `at` (once)",
        )),
    }
}

fn target(wire: &proto::ScheduleTarget) -> Result<Target, ServiceError> {
    match (&wire.queue, &wire.topic, &wire.stream) {
        (Some(q), None, None) => Ok(Target::Queue(q.clone())),
        (None, Some(t), None) => Ok(Target::Topic(t.clone())),
        (None, None, Some(s)) => Ok(Target::Stream(s.clone())),
        _ => Err(ServiceError::invalid(
            "target",
            "give exactly one of `queue`, `topic` and `stream`",
        )),
    }
}

/// Checks that `target` exists and accepts `message`.
async fn check_target(
    state: &AppState,
    name: &ScheduleName,
    target: &Target,
    message: &ScheduledMessage,
) -> Result<(), ServiceError> {
    check_attribute_names(message)?;
    let missing = |kind| ServiceError::ScheduleTargetNotFound {
        kind,
        name: target.name().chars().take(256).collect(),
    };
    let check_attributes =
        || queue_attributes(&firing_attributes(message, name, Timestamp::ZERO)).map(|_| ());
    match target {
        Target::Queue(name) => {
            let queue = QueueName::new(name).map_err(|_| missing("queue"))?;
            let view = match state.engine.get_queue(&queue).await {
                Err(EngineError::QueueNotFound { .. }) => return Err(missing("queue")),
                other => other?,
            };
            if view.config.fifo && message.group_id.is_none() {
                return Err(ServiceError::invalid(
                    "message.group_id",
                    format!("required: queue `{name}` is FIFO"),
                ));
            }
            check_attributes()
        }
        Target::Topic(name) => {
            let topic = baton_core::TopicName::new(name).map_err(|_| missing("topic"))?;
            match state.engine.get_topic(&topic).await {
                Err(TopicEngineError::TopicNotFound { .. }) => return Err(missing("topic")),
                other => other?,
            };
            routing_key(message)?;
            check_attributes()
        }
        Target::Stream(name) => {
            let stream = StreamName::new(name).map_err(|_| missing("stream"))?;
            match state.engine.get_stream(&stream).await {
                Err(StreamEngineError::Stream(baton_core::StreamError::StreamNotFound {
                    ..
                })) => Err(missing("stream")),
                other => other.map(|_| ()).map_err(ServiceError::from),
            }
        }
    }
}

fn routing_key(message: &ScheduledMessage) -> Result<RoutingKey, ServiceError> {
    RoutingKey::new(message.routing_key.as_deref().unwrap_or(""))
        .map_err(|e| ServiceError::invalid("message.routing_key", e.to_string()))
}

/// The attribute every firing carries with its schedule's name.
pub const SCHEDULE_ATTRIBUTE: &str = "baton.schedule";
/// The attribute every firing carries with its tick (milliseconds since the epoch; for a
/// manual firing, when it was asked for).
pub const FIRE_TIME_ATTRIBUTE: &str = "baton.fire_time";

/// The message's attributes with the schedule's own two added (a stream's headers).
fn firing_attributes(
    message: &ScheduledMessage,
    name: &ScheduleName,
    tick: Timestamp,
) -> BTreeMap<String, String> {
    let mut attributes = message.attributes.clone();
    attributes.insert(SCHEDULE_ATTRIBUTE.to_string(), name.to_string());
    attributes.insert(
        FIRE_TIME_ATTRIBUTE.to_string(),
        tick.as_millis().to_string(),
    );
    attributes
}

fn check_attribute_names(message: &ScheduledMessage) -> Result<(), ServiceError> {
    for reserved in [SCHEDULE_ATTRIBUTE, FIRE_TIME_ATTRIBUTE] {
        if message.attributes.contains_key(reserved) {
            return Err(ServiceError::invalid(
                format!("message.attributes.{reserved}"),
                "is set by the schedule itself on every firing",
            ));
        }
    }
    Ok(())
}

fn queue_attributes(
    attributes: &BTreeMap<String, String>,
) -> Result<baton_core::MessageAttributes, ServiceError> {
    let wire = attributes
        .iter()
        .map(|(k, v)| (k.clone(), proto::AttributeValue::Plain(v.clone())))
        .collect();
    attributes_from_wire(0, wire).map_err(|error| match error {
        ServiceError::InvalidParameter { field, reason } => ServiceError::InvalidParameter {
            field: field.replacen("messages[0].", "message.", 1),
            reason,
        },
        other => other,
    })
}

fn message_from_wire(wire: proto::ScheduleMessage) -> ScheduledMessage {
    ScheduledMessage {
        body: wire.body,
        attributes: wire.attributes,
        group_id: wire.group_id,
        routing_key: wire.routing_key,
        key: wire.key,
    }
}

fn missed(raw: Option<&str>) -> Result<Missed, ServiceError> {
    match raw {
        None => Ok(Missed::default()),
        Some(raw) => Missed::parse(raw).ok_or_else(|| {
            ServiceError::invalid("missed", format!("{raw:?} is not one of skip, once, all"))
        }),
    }
}

/// Creates or replaces a schedule; `true` when it was created.
pub async fn put(
    state: &AppState,
    raw_name: &str,
    request: proto::PutSchedule,
) -> Result<(bool, proto::ScheduleInfo), ServiceError> {
    let name = schedule_name(state, raw_name)?;
    let timing = timing(&request)?;
    let missed = missed(request.missed.as_deref())?;
    let target = target(&request.target)?;
    let start_at = request
        .start_at
        .map(|t| instant("start_at", t))
        .transpose()?;
    let end_at = request.end_at.map(|t| instant("end_at", t)).transpose()?;
    let message = message_from_wire(request.message);
    check_target(state, &name, &target, &message).await?;
    let spec = ScheduleSpec {
        timing,
        target,
        message,
        missed,
        start_at,
        end_at,
    };
    let (put, schedule) = state
        .engine
        .put_schedule(&name, spec, request.paused.unwrap_or(false))
        .await?;
    state.schedules.wake();
    Ok((put == schedule::Put::Created, info(&schedule)))
}

pub async fn show(state: &AppState, raw_name: &str) -> Result<proto::ScheduleInfo, ServiceError> {
    let name = schedule_name(state, raw_name)?;
    get(state, &name).await.map(|s| info(&s))
}

async fn get(state: &AppState, name: &ScheduleName) -> Result<Schedule, ServiceError> {
    state.engine.get_schedule(name).await?.ok_or_else(|| {
        schedule_error(schedule::ScheduleError::NotFound {
            name: name.to_string(),
        })
    })
}

pub async fn list(
    state: &AppState,
    after: Option<&str>,
    max: usize,
) -> Result<proto::ScheduleList, ServiceError> {
    if !(1..=schedule::SCHEDULE_LIST_MAX).contains(&max) {
        return Err(ServiceError::invalid(
            "max",
            format!("{max} is outside 1..={}", schedule::SCHEDULE_LIST_MAX),
        ));
    }
    let schedules = state.engine.list_schedules(after, max).await?;
    let next_after = (schedules.len() == max)
        .then(|| schedules.last().map(|s| s.name.to_string()))
        .flatten();
    Ok(proto::ScheduleList {
        schedules: schedules.iter().map(info).collect(),
        next_after,
    })
}

pub async fn delete(state: &AppState, raw_name: &str) -> Result<(), ServiceError> {
    let name = schedule_name(state, raw_name)?;
    state.engine.delete_schedule(&name).await?;
    Ok(())
}

pub async fn set_paused(
    state: &AppState,
    raw_name: &str,
    paused: bool,
) -> Result<proto::ScheduleInfo, ServiceError> {
    let name = schedule_name(state, raw_name)?;
    let schedule = state.engine.set_schedule_paused(&name, paused).await?;
    state.schedules.wake();
    Ok(info(&schedule))
}

/// Sends the schedule's message now, outside its ticks, and records the outcome (the
/// position does not move). A failed send is answered as the error it was, and recorded.
pub async fn fire(state: &AppState, raw_name: &str) -> Result<proto::FireResponse, ServiceError> {
    let name = schedule_name(state, raw_name)?;
    let schedule = get(state, &name).await?;
    let now = state.engine.now();
    let sent = send_firing(state, &schedule, now, true).await;
    let outcome = FireOutcome {
        tick: now,
        fired_at: state.engine.now(),
        ok: sent.is_ok(),
        detail: match &sent {
            Ok(detail) => detail.clone(),
            Err(error) => error.to_string(),
        },
        manual: true,
    };
    state.schedules.record_manual();
    let after = state
        .engine
        .advance_schedule(
            &name,
            schedule.version,
            schedule.position,
            0,
            Some(outcome.clone()),
        )
        .await?;
    sent?;
    Ok(proto::FireResponse {
        outcome: outcome_info(&outcome),
        schedule: info(&after),
    })
}

/// The dedup id of a firing (see the module doc).
fn firing_dedup_id(schedule: &Schedule, tick: Timestamp, manual: bool) -> String {
    if manual {
        format!("schedule:{}:{}m", schedule.name, tick.as_millis())
    } else {
        schedule::dedup_id(&schedule.name, tick)
    }
}

/// The message a firing of `schedule` (whose target is a queue) sends for `tick`.
pub(crate) fn queue_firing(
    schedule: &Schedule,
    tick: Timestamp,
    manual: bool,
) -> Result<(QueueName, SendEntry), ServiceError> {
    let Target::Queue(queue) = &schedule.spec.target else {
        return Err(ServiceError::Internal(format!(
            "schedule {} does not target a queue",
            schedule.name
        )));
    };
    let message = &schedule.spec.message;
    let attributes = firing_attributes(message, &schedule.name, tick);
    let entry = SendEntry {
        id: baton_engine::new_message_id(),
        body: Arc::from(message.body.as_str()),
        attributes: queue_attributes(&attributes)?,
        delay_ms: None,
        group_id: message.group_id.clone(),
        dedup_id: Some(firing_dedup_id(schedule, tick, manual)),
        notify: None,
    };
    Ok((super::queues::queue_name(queue)?, entry))
}

/// Sends one firing of `schedule` for `tick` (see the module doc for the dedup ids); what was
/// sent, for the outcome's detail.
pub(crate) async fn send_firing(
    state: &AppState,
    schedule: &Schedule,
    tick: Timestamp,
    manual: bool,
) -> Result<String, ServiceError> {
    let message = &schedule.spec.message;
    let dedup_id = firing_dedup_id(schedule, tick, manual);
    let attributes = firing_attributes(message, &schedule.name, tick);
    match &schedule.spec.target {
        Target::Queue(queue) => {
            let (name, entry) = queue_firing(schedule, tick, manual)?;
            let outcome = state.engine.send(&name, vec![entry]).await?;
            let first = outcome.first().map(|o| (o.id.to_string(), o.duplicate));
            Ok(match first {
                Some((id, true)) => format!("queue {queue}: already sent as message {id}"),
                Some((id, false)) => format!("queue {queue}: message {id}"),
                None => format!("queue {queue}: sent"),
            })
        }
        Target::Topic(topic) => {
            // Through the topic service, so live subscribers see the firing too.
            let message = proto::PublishMessage {
                routing_key: message.routing_key.clone().unwrap_or_default(),
                body: message.body.clone(),
                attributes: attributes
                    .into_iter()
                    .map(|(k, v)| (k, proto::AttributeValue::Plain(v)))
                    .collect(),
                group_id: message.group_id.clone(),
                dedup_id: Some(dedup_id),
            };
            let request = proto::PublishRequest {
                messages: vec![message],
                fence: None,
            };
            let published = super::topics::publish(state, topic, request).await?;
            let reached = published.messages.first().map_or(0, |m| m.delivered_to);
            Ok(format!("topic {topic}: reached {reached} subscriptions"))
        }
        Target::Stream(stream) => {
            let name = super::streams::stream_name(stream)?;
            let producer = (!manual).then(|| ProducerSeq {
                producer: format!("schedule:{}", schedule.name),
                sequence: tick.as_millis(),
            });
            let record = NewRecord {
                key: message.key.clone(),
                value: message.body.clone(),
                headers: attributes.into_iter().collect(),
                partition: None,
            };
            let appended = match state.engine.append(&name, producer, vec![record]).await {
                // Only an older tick than the producer's last can be stale: it landed before.
                Err(StreamEngineError::Stream(
                    baton_core::StreamError::ProducerSequenceStale { .. },
                )) => return Ok(format!("stream {stream}: already appended")),
                other => other?,
            };
            Ok(match appended.first() {
                Some(a) => format!(
                    "stream {stream}: partition {} offset {}",
                    a.partition, a.offset
                ),
                None => format!("stream {stream}: appended"),
            })
        }
    }
}

fn outcome_info(outcome: &FireOutcome) -> proto::FireOutcomeInfo {
    proto::FireOutcomeInfo {
        tick: outcome.tick.as_millis(),
        fired_at: outcome.fired_at.as_millis(),
        ok: outcome.ok,
        detail: outcome.detail.clone(),
        manual: outcome.manual,
    }
}

/// A schedule as the API shows it.
pub fn info(schedule: &Schedule) -> proto::ScheduleInfo {
    let spec = &schedule.spec;
    let (cron, timezone, at) = match &spec.timing {
        Timing::Cron(cron) => (
            Some(cron.pattern().to_string()),
            Some(cron.timezone().to_string()),
            None,
        ),
        Timing::At(at) => (None, None, Some(at.as_millis())),
    };
    let name = spec.target.name().to_string();
    let target = match &spec.target {
        Target::Queue(_) => proto::ScheduleTarget {
            queue: Some(name),
            ..Default::default()
        },
        Target::Topic(_) => proto::ScheduleTarget {
            topic: Some(name),
            ..Default::default()
        },
        Target::Stream(_) => proto::ScheduleTarget {
            stream: Some(name),
            ..Default::default()
        },
    };
    let m = &spec.message;
    proto::ScheduleInfo {
        name: schedule.name.to_string(),
        cron,
        timezone,
        at,
        target,
        message: proto::ScheduleMessage {
            body: m.body.clone(),
            attributes: m.attributes.clone(),
            group_id: m.group_id.clone(),
            routing_key: m.routing_key.clone(),
            key: m.key.clone(),
        },
        missed: spec.missed.as_str().to_string(),
        start_at: spec.start_at.map(Timestamp::as_millis),
        end_at: spec.end_at.map(Timestamp::as_millis),
        paused: schedule.paused,
        state: schedule.state().as_str().to_string(),
        version: schedule.version,
        created_at: schedule.created_at.as_millis(),
        updated_at: schedule.updated_at.as_millis(),
        position: schedule.position.as_millis(),
        next_fires: schedule
            .next_fires(NEXT_FIRES_SHOWN)
            .into_iter()
            .map(Timestamp::as_millis)
            .collect(),
        last_outcome: schedule.last_outcome.as_ref().map(outcome_info),
        fired: schedule.n_fired,
        missed_ticks: schedule.n_missed,
        failures: schedule.n_failed,
    }
}
