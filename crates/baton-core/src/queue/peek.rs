//! Looking at a queue's live messages without consuming them (the dashboard's message
//! browser). A peek changes nothing: no lease, no receive count, no history event.

use std::sync::Arc;

use crate::attributes::MessageAttributes;
use crate::limits::PEEK_MAX;
use crate::message::{MessageId, Seq};
use crate::name::QueueName;
use crate::time::Timestamp;

use super::{Queue, State};

/// Where a peeked message is right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeekState {
    /// Waiting for its delay to end at `until`.
    Delayed { until: Timestamp },
    /// Ready to be received.
    Visible,
    /// Leased to a consumer until `deadline`.
    InFlight { deadline: Timestamp },
}

impl PeekState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeekState::Delayed { .. } => "delayed",
            PeekState::Visible => "visible",
            PeekState::InFlight { .. } => "in_flight",
        }
    }
}

/// A copy of one live message as it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekedMessage {
    pub id: MessageId,
    pub seq: Seq,
    pub body: Arc<str>,
    pub attributes: MessageAttributes,
    pub state: PeekState,
    pub receive_count: u32,
    pub sent_at: Timestamp,
    pub group_id: Option<Arc<str>>,
    pub dedup_id: Option<Arc<str>>,
    /// The queue it was dead-lettered from, while it sits in a dead-letter queue.
    pub dead_letter_source: Option<QueueName>,
}

impl Queue {
    /// Up to `max` (capped at `PEEK_MAX`) live messages with a sequence above `after`, in
    /// sequence order, as of the last `advance`. Pass the last sequence of one page as `after`
    /// to get the next; the work is proportional to the page, not to the queue.
    pub fn peek(&self, after: Seq, max: u32) -> Vec<PeekedMessage> {
        let max = max.min(PEEK_MAX) as usize;
        self.messages
            .iter_after(after)
            .take(max)
            .map(|(seq, record)| PeekedMessage {
                id: record.id,
                seq,
                body: record.body.clone(),
                attributes: record.attributes().clone(),
                state: match record.state() {
                    State::Delayed { until } => PeekState::Delayed { until },
                    State::Visible => PeekState::Visible,
                    State::InFlight { deadline, .. } => PeekState::InFlight { deadline },
                },
                receive_count: record.receive_count,
                sent_at: record.sent_at,
                group_id: record.group_id().cloned(),
                dedup_id: record.dedup_id().cloned(),
                dead_letter_source: record.dead_letter_source().cloned(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::QueueConfig;
    use crate::limits::QueueLimits;
    use crate::queue::SendEntry;

    fn queue_with(n: u64) -> Queue {
        let name = QueueName::new("q").unwrap();
        let mut queue =
            Queue::new(name, QueueConfig::default(), QueueLimits::default(), 1).unwrap();
        let entries = (0..n)
            .map(|i| SendEntry::new(MessageId::from_u128(u128::from(i) + 1), format!("m{i}")))
            .collect();
        queue.send(Timestamp::from_millis(0), entries).unwrap();
        queue
    }

    #[test]
    fn peek_pages_in_sequence_order_and_changes_nothing() {
        let mut queue = queue_with(5);
        let before = queue.stats(Timestamp::from_millis(0));
        let first = queue.peek(0, 2);
        let bodies: Vec<&str> = first.iter().map(|m| &*m.body).collect();
        assert_eq!(bodies, ["m0", "m1"]);
        let next = queue.peek(first.last().unwrap().seq, 10);
        let bodies: Vec<&str> = next.iter().map(|m| &*m.body).collect();
        assert_eq!(bodies, ["m2", "m3", "m4"]);
        assert!(queue.peek(next.last().unwrap().seq, 10).is_empty());
        assert_eq!(queue.stats(Timestamp::from_millis(0)), before);
        // Peeked messages are still all there to receive.
        let received = queue.receive(Timestamp::from_millis(1), 10, Some(1000));
        assert_eq!(received.unwrap().len(), 5);
    }

    #[test]
    fn peek_shows_states_and_skips_gone_messages() {
        let mut queue = queue_with(3);
        let delivery = queue
            .receive(Timestamp::from_millis(10), 1, Some(1000))
            .unwrap()
            .remove(0);
        let acked_second = queue
            .receive(Timestamp::from_millis(10), 1, Some(1000))
            .unwrap();
        queue
            .ack(Timestamp::from_millis(11), &acked_second[0].receipt)
            .unwrap();
        let peeked = queue.peek(0, 10);
        let view: Vec<(&str, &str, u32)> = peeked
            .iter()
            .map(|m| (&*m.body, m.state.as_str(), m.receive_count))
            .collect();
        assert_eq!(view, [("m0", "in_flight", 1), ("m2", "visible", 0)]);
        assert_eq!(
            peeked[0].state,
            PeekState::InFlight {
                deadline: Timestamp::from_millis(1010)
            }
        );
        assert_eq!(peeked[0].id, delivery.id);
    }

    #[test]
    fn peek_is_capped_at_peek_max() {
        let queue = queue_with(u64::from(PEEK_MAX) + 5);
        assert_eq!(queue.peek(0, u32::MAX).len(), PEEK_MAX as usize);
        assert_eq!(queue.peek(u64::MAX, 10).len(), 0);
    }
}
