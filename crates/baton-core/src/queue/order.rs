//! Two orders over live messages, kept cheap for the usual case: a standard queue's visible
//! messages by sequence (`ByVisible`) and all messages by send time (`BySent`).
//!
//! Nearly always a new entry sorts after every other (sequences grow, and so does the clock),
//! so each order is a `Run`, a deque of sequences (8 bytes each) appended at the back, beside
//! a B-tree for the entries that arrive out of order (a message visible again after a nack, a
//! moved message that keeps its send time). A message that leaves from the middle of a run
//! stays in it, dead, until it reaches the front or the dead outnumber the live, when the run
//! is compacted: amortised O(1) per message, and at most about twice the live entries. The
//! front of a run is always live, so the first entry of an order is found in O(1).

use std::collections::{BTreeSet, VecDeque};
use std::iter::Peekable;

use super::store::Store;
use crate::message::Seq;
use crate::time::Timestamp;

/// Dead entries a run tolerates beyond as many as it has live ones.
const RUN_DEAD_SLACK: usize = 64;
/// Entries' worth of capacity a run keeps when it empties.
const EMPTY_CAPACITY_KEPT: usize = 4096;

/// Sequences in the order of their owner, live ones (in the store) and dead ones mixed.
#[derive(Debug, Default)]
struct Run {
    seqs: VecDeque<Seq>,
    n_dead: usize,
}

impl Run {
    fn front(&self) -> Option<Seq> {
        self.seqs.front().copied()
    }

    fn back(&self) -> Option<Seq> {
        self.seqs.back().copied()
    }

    fn push_back(&mut self, seq: Seq) {
        self.seqs.push_back(seq);
    }

    /// Takes the front, which the caller has looked at and which is live.
    fn pop_front(&mut self, store: &Store) {
        self.seqs.pop_front();
        self.trim(store);
    }

    /// One of the run's messages has just left `store`.
    fn forget_one(&mut self, store: &Store) {
        self.n_dead += 1;
        self.trim(store);
        let n_live = self.seqs.len() - self.n_dead;
        if self.n_dead > n_live + RUN_DEAD_SLACK {
            self.seqs.retain(|seq| store.contains(*seq));
            self.n_dead = 0;
        }
    }

    /// Drops dead entries at the front.
    fn trim(&mut self, store: &Store) {
        while let Some(&seq) = self.seqs.front() {
            if store.contains(seq) {
                break;
            }
            self.seqs.pop_front();
            assert!(self.n_dead > 0, "every dead entry was counted");
            self.n_dead -= 1;
        }
        if self.seqs.is_empty() && self.seqs.capacity() > EMPTY_CAPACITY_KEPT {
            self.seqs = VecDeque::new();
        }
    }

    fn iter<'a>(&'a self, store: &'a Store) -> impl Iterator<Item = Seq> + 'a {
        self.seqs.iter().copied().filter(|seq| store.contains(*seq))
    }
}

/// Visible messages of a standard queue, by sequence.
#[derive(Debug, Default)]
pub(super) struct ByVisible {
    run: Run,
    rest: BTreeSet<Seq>,
}

impl ByVisible {
    pub(super) fn insert(&mut self, seq: Seq) {
        if self.run.back().is_none_or(|back| back < seq) {
            self.run.push_back(seq);
        } else {
            self.rest.insert(seq);
        }
    }

    /// Takes the first (lowest) sequence.
    pub(super) fn pop_first(&mut self, store: &Store) -> Option<Seq> {
        match (self.run.front(), self.rest.first()) {
            (Some(run), Some(&rest)) if rest < run => self.rest.pop_first(),
            (Some(run), _) => {
                self.run.pop_front(store);
                Some(run)
            }
            (None, _) => self.rest.pop_first(),
        }
    }

    /// Message `seq`, which was in this order, has just left `store`.
    pub(super) fn remove(&mut self, seq: Seq, store: &Store) {
        if !self.rest.remove(&seq) {
            self.run.forget_one(store);
        }
    }

    /// Every sequence, in order.
    #[cfg(test)]
    pub(super) fn iter<'a>(&'a self, store: &'a Store) -> impl Iterator<Item = Seq> + 'a {
        merge(self.run.iter(store), self.rest.iter().copied())
    }
}

/// Every message by `(sent_at, seq)`.
#[derive(Debug, Default)]
pub(super) struct BySent {
    run: Run,
    /// The key last appended to `run`: at least that of its back.
    run_last: (Timestamp, Seq),
    rest: BTreeSet<(Timestamp, Seq)>,
}

impl BySent {
    pub(super) fn insert(&mut self, sent_at: Timestamp, seq: Seq) {
        if self.run.front().is_none() || self.run_last < (sent_at, seq) {
            self.run.push_back(seq);
            self.run_last = (sent_at, seq);
        } else {
            self.rest.insert((sent_at, seq));
        }
    }

    pub(super) fn first(&self, store: &Store) -> Option<(Timestamp, Seq)> {
        let run = self.run.front().map(|seq| (sent_at(store, seq), seq));
        let rest = self.rest.first().copied();
        match (run, rest) {
            (Some(run), Some(rest)) => Some(run.min(rest)),
            (run, rest) => run.or(rest),
        }
    }

    /// Message `seq`, sent at `sent_at`, has just left `store`.
    pub(super) fn remove(&mut self, sent_at: Timestamp, seq: Seq, store: &Store) {
        if !self.rest.remove(&(sent_at, seq)) {
            self.run.forget_one(store);
        }
    }

    /// Every `(sent_at, seq)`, in order.
    pub(super) fn iter<'a>(
        &'a self,
        store: &'a Store,
    ) -> impl Iterator<Item = (Timestamp, Seq)> + 'a {
        let run = self.run.iter(store).map(|seq| (sent_at(store, seq), seq));
        merge(run, self.rest.iter().copied())
    }
}

fn sent_at(store: &Store, seq: Seq) -> Timestamp {
    store
        .get(seq)
        .expect("live entries are in the store")
        .sent_at
}

/// The union of two ascending iterators, ascending.
fn merge<T: Ord>(
    a: impl Iterator<Item = T>,
    b: impl Iterator<Item = T>,
) -> impl Iterator<Item = T> {
    let (mut a, mut b): (Peekable<_>, Peekable<_>) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::attributes::MessageAttributes;
    use crate::message::MessageId;
    use crate::queue::store::Record;

    #[derive(Debug, Clone)]
    enum Op {
        /// A new message, sent this many ms after the previous one (negative: earlier).
        Send { after_ms: i8, visible: bool },
        /// Message number `i` (modulo the live ones) leaves.
        Leave { i: usize },
        /// The first visible message is received; it comes back visible if `back`.
        Receive { back: bool },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<i8>(), any::<bool>()).prop_map(|(after_ms, visible)| Op::Send {
                after_ms: after_ms / 16,
                visible,
            }),
            2 => any::<usize>().prop_map(|i| Op::Leave { i }),
            2 => any::<bool>().prop_map(|back| Op::Receive { back }),
        ]
    }

    fn sent(store: &mut Store, seq: Seq, sent_ms: u64) -> Timestamp {
        let sent_at = Timestamp::from_millis(sent_ms);
        let record = Record::sent(
            MessageId::from_u128(u128::from(seq)),
            Arc::from("x"),
            sent_at,
            MessageAttributes::default(),
            None,
            None,
            None,
        );
        store.insert(seq, record);
        sent_at
    }

    #[test]
    fn runs_compact_when_the_dead_outnumber_the_live() {
        let mut store = Store::default();
        let mut by_sent = BySent::default();
        for seq in 1..=1000 {
            let sent_at = sent(&mut store, seq, seq);
            by_sent.insert(sent_at, seq);
        }
        // The first stays, so nothing leaves from the front of the run.
        for seq in (2..=1000).filter(|seq| seq % 10 != 0) {
            store.remove(seq).unwrap();
            by_sent.remove(Timestamp::from_millis(seq), seq, &store);
            let n_live = store.len();
            assert!(by_sent.run.seqs.len() <= 2 * n_live + RUN_DEAD_SLACK + 1);
        }
        assert_eq!(by_sent.run.seqs.len(), 101 + by_sent.run.n_dead);
        assert!(by_sent.run.n_dead <= 101 + RUN_DEAD_SLACK);
        let want: Vec<Seq> = std::iter::once(1).chain((10..=1000).step_by(10)).collect();
        let got: Vec<Seq> = by_sent.iter(&store).map(|(_, seq)| seq).collect();
        assert_eq!(got, want);
    }

    proptest! {
        /// Both orders agree with a B-tree of the same entries after every step, through
        /// enough steps to compact the runs.
        #[test]
        fn orders_agree_with_btrees(ops in proptest::collection::vec(op(), 1..1500)) {
            let mut store = Store::default();
            let mut by_visible = ByVisible::default();
            let mut by_sent = BySent::default();
            let mut visible_model: BTreeSet<Seq> = BTreeSet::new();
            let mut sent_model: BTreeSet<(Timestamp, Seq)> = BTreeSet::new();
            let mut now = 1_000_000u64;
            let mut next_seq: Seq = 1;
            for op in ops {
                match op {
                    Op::Send { after_ms, visible } => {
                        now = now.saturating_add_signed(i64::from(after_ms));
                        let seq = next_seq;
                        next_seq += 1;
                        let sent_at = sent(&mut store, seq, now);
                        by_sent.insert(sent_at, seq);
                        sent_model.insert((sent_at, seq));
                        if visible {
                            by_visible.insert(seq);
                            visible_model.insert(seq);
                        }
                    }
                    Op::Leave { i } => {
                        if sent_model.is_empty() {
                            continue;
                        }
                        let &(sent_at, seq) = sent_model.iter().nth(i % sent_model.len()).unwrap();
                        sent_model.remove(&(sent_at, seq));
                        store.remove(seq).unwrap();
                        by_sent.remove(sent_at, seq, &store);
                        if visible_model.remove(&seq) {
                            by_visible.remove(seq, &store);
                        }
                    }
                    Op::Receive { back } => {
                        let got = by_visible.pop_first(&store);
                        prop_assert_eq!(got, visible_model.pop_first());
                        if let (Some(seq), true) = (got, back) {
                            by_visible.insert(seq);
                            visible_model.insert(seq);
                        }
                    }
                }
                prop_assert_eq!(
                    by_visible.iter(&store).collect::<Vec<_>>(),
                    visible_model.iter().copied().collect::<Vec<_>>()
                );
                prop_assert_eq!(
                    by_sent.iter(&store).collect::<Vec<_>>(),
                    sent_model.iter().copied().collect::<Vec<_>>()
                );
                prop_assert_eq!(by_sent.first(&store), sent_model.first().copied());
                prop_assert!(by_visible.run.seqs.len() <= 2 * visible_model.len() + RUN_DEAD_SLACK + 1);
                prop_assert!(by_sent.run.seqs.len() <= 2 * sent_model.len() + RUN_DEAD_SLACK + 1);
            }
        }
    }
}
