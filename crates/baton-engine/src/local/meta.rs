//! Queue metadata: tags and API-specific attributes (such as an SQS policy), whole
//! replacements and atomic patches, and the push subscription. Each change happens on a copy
//! under the queue's lock and is logged as one record of its result (`SetMeta` with the maps,
//! `SetPush` with the subscription), so two changes never drop each other's keys and a failed
//! one changes nothing.

use std::collections::BTreeMap;

use baton_storage::records::QueueOp;

use super::{not_found, Access, LocalEngine};
use crate::durable::codec;
use crate::{
    EngineError, PushSpec, QueueMeta, QueueView, QUEUE_META_ATTRIBUTES_MAX,
    QUEUE_META_VALUE_BYTES_MAX, QUEUE_TAGS_MAX,
};

type Map = BTreeMap<String, String>;

impl LocalEngine {
    /// Applies `change` to a copy of the queue's tags and attributes, checks the limits of the
    /// result and stores it, all under the queue's lock; logged as one `SetMeta` record.
    pub(super) async fn change_meta(
        &self,
        name: &baton_core::QueueName,
        change: impl FnOnce(&mut Map, &mut Map) -> Result<(), EngineError>,
    ) -> Result<QueueView, EngineError> {
        self.on_meta(name, |meta, now| {
            change(&mut meta.tags, &mut meta.attributes)?;
            check_limits(&meta.tags, &meta.attributes)?;
            Ok(QueueOp::SetMeta {
                queue: name.to_string(),
                now: now.as_millis(),
                tags: meta.tags.clone().into_iter().collect(),
                attributes: meta.attributes.clone().into_iter().collect(),
            })
        })
        .await
    }

    /// Sets or removes the queue's push subscription under the queue's lock, if `expect`
    /// (when given) is what it holds; logged as one `SetPush` record.
    pub(super) async fn change_push(
        &self,
        name: &baton_core::QueueName,
        push: Option<PushSpec>,
        expect: Option<Option<PushSpec>>,
    ) -> Result<QueueView, EngineError> {
        self.on_meta(name, |meta, now| {
            if expect.is_some_and(|expected| expected != meta.push) {
                return Err(EngineError::MetaConflict {
                    queue: name.to_string(),
                    attribute: "push".to_string(),
                });
            }
            meta.push = push;
            Ok(QueueOp::SetPush {
                queue: name.to_string(),
                now: now.as_millis(),
                push: meta.push.as_ref().map(codec::push_to_disk),
            })
        })
        .await
    }

    /// Runs `change` on a copy of the queue's metadata under the queue's lock, stores the copy
    /// and logs the record `change` returns; a change that fails leaves everything as it was.
    async fn on_meta(
        &self,
        name: &baton_core::QueueName,
        change: impl FnOnce(&mut QueueMeta, baton_core::Timestamp) -> Result<QueueOp, EngineError>,
    ) -> Result<QueueView, EngineError> {
        self.check_ready()?;
        let (view, lsn) = {
            let registry = self.queues.read();
            let slot = registry.get(name).ok_or_else(|| not_found(name))?;
            let (view, lsn) =
                self.run_on(&registry, slot, Access::Write, |queue, now, journal| {
                    let mut meta = slot.meta.lock();
                    let mut next = meta.clone();
                    let record = change(&mut next, now)?;
                    next.modified_at = now;
                    *meta = next;
                    drop(meta);
                    journal.push(|| record);
                    Ok::<_, EngineError>(slot.view(queue, now))
                })?;
            (view?, lsn)
        };
        self.wait(lsn).await?;
        Ok(view)
    }
}

fn check_limits(tags: &Map, attributes: &Map) -> Result<(), EngineError> {
    let too_big = |map: &Map| {
        map.iter()
            .any(|(k, v)| k.len() + v.len() > QUEUE_META_VALUE_BYTES_MAX)
    };
    if tags.len() > QUEUE_TAGS_MAX || too_big(tags) {
        return Err(EngineError::Queue(
            baton_core::QueueError::InvalidParameter {
                field: "tags".to_string(),
                reason: format!(
                "at most {QUEUE_TAGS_MAX} tags of at most {QUEUE_META_VALUE_BYTES_MAX} bytes each"
            ),
            },
        ));
    }
    if attributes.len() > QUEUE_META_ATTRIBUTES_MAX || too_big(attributes) {
        return Err(EngineError::Queue(baton_core::QueueError::InvalidParameter {
            field: "attributes".to_string(),
            reason: format!(
                "at most {QUEUE_META_ATTRIBUTES_MAX} attributes of at most {QUEUE_META_VALUE_BYTES_MAX} bytes each"
            ),
        }));
    }
    Ok(())
}
