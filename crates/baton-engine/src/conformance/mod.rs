//! The engine interface's behaviour, written once and run against every engine: the memory and
//! embedded engines here (`local/conformance_tests.rs`), the Redis Cluster engine in its own
//! crate. A case knows only the [`Engine`] trait and a [`Harness`], which makes fresh engines
//! and moves their time; durability (restarts, power loss) is tested per engine, not here.
//! Locks (`locks`) and schedules (`schedules`) are reached through `Engine`, whose
//! supertraits `LockEngine` and `ScheduleEngine` are.
//!
//! Run the suite for an engine with [`engine_conformance!`](crate::engine_conformance), which
//! expands to one `#[tokio::test]` per case.
//!
//! Built for the crate's own tests and with the `conformance` feature (for other engines'
//! crates, as a dev-dependency).

#![allow(clippy::unwrap_used)]

pub mod fenced;
pub mod locks;
pub mod queues;
pub mod schedules;
pub mod streams;
pub mod topics;

use std::sync::Arc;

use async_trait::async_trait;
use baton_core::{QueueName, ReceiptHandle, SendEntry, StreamName};

use crate::{Engine, EngineConfig, ReceiveOptions};

/// What a case needs of an engine besides its interface.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A fresh, empty, ready engine with `config`, sharing nothing with earlier ones.
    async fn engine(&self, config: EngineConfig) -> Arc<dyn Engine>;

    /// Moves `engine`'s time `ms` forward, then lets it apply what became due (its tick). An
    /// engine on an injected clock advances it; an engine on a server's clock sleeps.
    async fn advance(&self, engine: &Arc<dyn Engine>, ms: u64);
}

/// Expands to one `#[tokio::test]` per conformance case, each with a harness from `$harness`
/// (an expression evaluated per test). `engine_conformance!(queues: $harness)` expands to the
/// queue cases only, for an engine whose other concerns are not built yet,
/// `engine_conformance!(locks: $harness)` to the lock cases with fenced writes to queues only
/// (the case of every fenced write needs streams and topics), and
/// `engine_conformance!(schedules: $harness)` to the schedule cases (which need queues only),
/// and `engine_conformance!(topics: $harness)` to the topic cases that need queues only (the
/// stream-subscription case stays in the full suite).
#[macro_export]
macro_rules! engine_conformance {
    ($harness:expr) => {
        $crate::engine_conformance!(queues: $harness);
        $crate::engine_conformance!(locks: $harness);
        $crate::engine_conformance!(@cases $harness;
            streams::appended_records_read_back_in_order_with_dense_offsets,
            streams::keyed_records_stay_in_one_partition,
            streams::a_group_delivers_each_record_once_and_keeps_it_pending_until_acked,
            streams::claim_hands_idle_pending_records_to_another_consumer,
            streams::seek_moves_a_group_back,
            streams::an_idempotent_producer_answers_a_repeat_with_the_original_offsets,
            topics::a_publish_reaches_stream_subscriptions,
            fenced::every_fenced_write_needs_the_current_token,
        );
        $crate::engine_conformance!(schedules: $harness);
        $crate::engine_conformance!(topics: $harness);
    };
    (topics: $harness:expr) => {
        $crate::engine_conformance!(@cases $harness;
            topics::a_publish_fans_out_by_pattern_and_filter,
            topics::a_publish_to_a_missing_target_changes_nothing,
        );
    };
    (schedules: $harness:expr) => {
        $crate::engine_conformance!(@cases $harness;
            schedules::a_schedule_is_kept_listed_replaced_and_deleted,
            schedules::due_ticks_are_planned_on_the_engines_time_and_an_advance_is_final,
            schedules::a_paused_schedule_plans_nothing_and_resumes_from_now,
            schedules::a_firing_to_a_queue_sends_once_and_steps_past_its_tick,
        );
    };
    (locks: $harness:expr) => {
        $crate::engine_conformance!(@cases $harness;
            locks::a_lock_is_granted_once_and_refused_with_its_holder,
            locks::renew_and_release_take_only_the_current_token,
            locks::a_lock_expires_on_the_engines_time,
            locks::a_waiting_acquire_gets_the_lock_on_release,
            fenced::fenced_queue_writes_need_the_current_token,
        );
    };
    (queues: $harness:expr) => {
        $crate::engine_conformance!(@cases $harness;
            queues::create_is_idempotent_and_conflicts_name_the_difference,
            queues::a_dead_letter_queue_must_exist_match_and_stay_while_used,
            queues::send_receive_ack_round_trip_counts_every_step,
            queues::a_receive_returns_at_most_max_and_hides_what_it_returned,
            queues::an_expired_lease_redelivers_and_its_receipt_no_longer_acks,
            queues::nack_makes_a_message_visible_now_or_after_its_delay,
            queues::a_visibility_change_extends_a_lease_and_zero_releases_it,
            queues::delayed_sends_become_visible_after_their_delay,
            queues::fifo_delivers_a_group_in_order_to_one_consumer_at_a_time,
            queues::a_dedup_id_makes_a_repeated_send_a_duplicate,
            queues::dead_letters_move_across_queues_and_redrive_brings_them_home,
            queues::max_depth_refuses_a_send_and_keeps_what_the_queue_has,
            queues::a_failing_batch_changes_nothing,
            queues::send_each_fails_entries_alone_and_fifo_ids_whole,
            queues::a_metadata_patch_keeps_other_keys_and_checks_expectations,
            queues::a_push_subscription_is_set_whole_checked_and_removed,
            queues::purge_removes_every_message,
            queues::retention_expires_old_messages,
            queues::the_status_of_a_message_tells_its_history,
            queues::a_long_poll_returns_as_soon_as_a_message_arrives,
            queues::waiting_receives_are_bounded,
            queues::shutdown_ends_waiting_receives_with_no_messages,
        );
    };
    (@cases $harness:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = $harness;
                $crate::conformance::$module::$case(&harness).await;
            }
        )*
    };
}

pub(crate) fn queue(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

pub(crate) fn stream(name: &str) -> StreamName {
    StreamName::new(name).unwrap()
}

pub(crate) fn entry(body: &str) -> SendEntry {
    SendEntry::new(crate::new_message_id(), body)
}

/// A receive that does not wait, with the queue's visibility timeout or `visibility_ms`.
pub(crate) fn now(max: u32, visibility_ms: Option<u64>) -> ReceiveOptions {
    ReceiveOptions {
        max,
        wait_ms: Some(0),
        visibility_timeout_ms: visibility_ms,
    }
}

/// Receives without waiting; returns `(body, receipt)` of each delivery.
pub(crate) async fn take(
    engine: &Arc<dyn Engine>,
    name: &str,
    max: u32,
    visibility_ms: Option<u64>,
) -> Vec<(String, ReceiptHandle)> {
    engine
        .receive(&queue(name), now(max, visibility_ms))
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.body.to_string(), d.receipt))
        .collect()
}

pub(crate) fn topic(name: &str) -> baton_core::TopicName {
    baton_core::TopicName::new(name).unwrap()
}

pub(crate) fn subscription_name(name: &str) -> baton_core::SubscriptionName {
    baton_core::SubscriptionName::new(name).unwrap()
}
