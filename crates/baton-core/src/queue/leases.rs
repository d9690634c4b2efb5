//! Leases: how a receive hands them out, what their receipts settle (ack, nack and visibility
//! changes of the current lease for the native API; SQS's delete and visibility change by any
//! receipt issued for a message) and how a lease ends (back to the queue, or to the
//! dead-letter queue).

use super::*;

/// More leases than a crash can forget: the receives of one sync interval, with room to
/// spare (2^32 restarts before the numbering could run out).
pub const LEASES_FORGOTTEN_MAX: u64 = 1 << 32;

/// What `Queue::change_visibility_of_message` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityOutcome {
    /// The message's current lease now ends when asked.
    Changed,
    /// The message is visible or delayed: nothing changed.
    NotInFlight,
    /// The message is no longer in the queue: nothing changed.
    Gone,
}

impl Queue {
    /// Receives up to `max` visible messages, each leased for `visibility_timeout_ms` (or the
    /// queue's default).
    ///
    /// # Errors
    /// `InvalidParameter` for `max` outside 1..=RECEIVE_MAX or a timeout over 12 hours;
    /// `TooManyInFlight` when a standard queue is at its in-flight limit (a FIFO queue answers
    /// with no messages instead, as SQS does).
    pub fn receive(
        &mut self,
        now: Timestamp,
        max: u32,
        visibility_timeout_ms: Option<u64>,
    ) -> Result<Vec<Delivery>, QueueError> {
        if !(1..=RECEIVE_MAX).contains(&max) {
            return Err(invalid(
                "max",
                format!("{max} is outside 1..={RECEIVE_MAX}"),
            ));
        }
        let timeout_ms = visibility_timeout_ms.unwrap_or(self.config.visibility_timeout_ms);
        if timeout_ms > VISIBILITY_TIMEOUT_MS_MAX {
            return Err(invalid(
                "visibility_timeout_ms",
                format!("{timeout_ms} is outside 0..={VISIBILITY_TIMEOUT_MS_MAX}"),
            ));
        }
        self.advance(now);
        let in_flight = self.leases.len() as u32;
        let room = self.in_flight_max().saturating_sub(in_flight);
        if room == 0 {
            if self.config.fifo || self.n_visible == 0 {
                return Ok(Vec::new());
            }
            return Err(QueueError::TooManyInFlight {
                queue: self.name.clone(),
                in_flight,
            });
        }
        let n_max = max.min(room) as usize;
        let taken = self.take_visible(n_max);
        let deadline = now.plus_ms(timeout_ms);
        Ok(taken
            .into_iter()
            .map(|seq| self.lease(seq, now, deadline))
            .collect())
    }

    /// Takes up to `n_max` visible messages off the ready order (on a FIFO queue, whole runs of
    /// available groups, in order within each group).
    fn take_visible(&mut self, n_max: usize) -> Vec<Seq> {
        let mut taken: Vec<Seq> = Vec::with_capacity(n_max.min(self.n_visible as usize));
        match &mut self.ready {
            Ready::Standard(ready) => {
                while taken.len() < n_max {
                    let Some(seq) = ready.pop_first(&self.messages) else {
                        break;
                    };
                    taken.push(seq);
                }
            }
            Ready::Fifo(fifo) => {
                while taken.len() < n_max {
                    let Some((_, group_key)) = fifo.available.pop_first() else {
                        break;
                    };
                    let group = fifo
                        .groups
                        .get_mut(&group_key)
                        .expect("available groups exist");
                    group.available_at = None;
                    while taken.len() < n_max {
                        let Some(&seq) = group.pending.first() else {
                            break;
                        };
                        if !self.messages.get(seq).is_some_and(Record::is_visible) {
                            break;
                        }
                        group.pending.pop_first();
                        group.in_flight += 1;
                        taken.push(seq);
                    }
                }
            }
        }
        taken
    }

    /// Leases visible message `seq` until `deadline` and answers its delivery.
    fn lease(&mut self, seq: Seq, now: Timestamp, deadline: Timestamp) -> Delivery {
        let lease = self.next_lease;
        self.next_lease += 1;
        let message = self.messages.get_mut(seq).expect("indexed messages exist");
        debug_assert!(message.is_visible());
        message.set_state(State::InFlight { deadline, lease });
        message.receive_count += 1;
        let first_received_at = message.note_receive(now);
        message.push_history(HistoryEvent {
            kind: HistoryEventKind::Received,
            at: now,
            receive_count: message.receive_count,
            detail: None,
        });
        self.n_visible -= 1;
        self.leases.insert((deadline, seq));
        self.stats.received_total += 1;
        Delivery {
            id: message.id,
            seq,
            body: message.body.clone(),
            attributes: message.attributes().clone(),
            receipt: ReceiptHandle::mint(self.epoch, seq, lease),
            receive_count: message.receive_count,
            sent_at: message.sent_at,
            first_received_at,
            group_id: message.group_id().cloned(),
            dedup_id: message.dedup_id().cloned(),
            dead_letter_source: message.dead_letter_source().cloned(),
        }
    }

    /// Ends every lease at once, as if each visibility timeout had expired now (dead-lettering
    /// messages that used up their receives). Used after a restart: leases are not durable.
    /// Lease numbering then jumps by [`LEASES_FORGOTTEN_MAX`]: a durable engine answers a
    /// receive before its record is synced, so a crash can forget leases consumers still
    /// hold, and a number handed out again would let such a receipt act on the new lease.
    /// After the jump every receipt from before the restart is stale. Returns how many leases
    /// ended.
    pub fn release_all_leases(&mut self, now: Timestamp) -> u64 {
        self.advance(now);
        let leased: Vec<Seq> = self.leases.iter().map(|(_, seq)| *seq).collect();
        for &seq in &leased {
            self.end_lease(seq, now, 0, "broker restarted");
        }
        self.next_lease = self.next_lease.saturating_add(LEASES_FORGOTTEN_MAX);
        leased.len() as u64
    }

    /// The sequence of the message `receipt` was issued for, if this incarnation issued it
    /// (whether or not the message is still here).
    fn issued(&self, receipt: &ReceiptHandle) -> Result<Seq, ReceiptError> {
        let issued = receipt.is_from(self.epoch)
            && 0 < receipt.seq
            && receipt.seq < self.next_seq
            && 0 < receipt.lease
            && receipt.lease < self.next_lease;
        if issued {
            Ok(receipt.seq)
        } else {
            Err(ReceiptError::Invalid)
        }
    }

    /// The sequence of the message `receipt` leases, if the lease is current.
    fn check_receipt(&self, receipt: &ReceiptHandle) -> Result<Seq, ReceiptError> {
        let seq = self.issued(receipt)?;
        match self.messages.get(seq).map(Record::state) {
            Some(State::InFlight { lease, .. }) if lease == receipt.lease => Ok(seq),
            _ => Err(ReceiptError::Stale),
        }
    }

    /// Deletes the message the receipt leases: processing is done.
    pub fn ack(&mut self, now: Timestamp, receipt: &ReceiptHandle) -> Result<Acked, ReceiptError> {
        self.advance(now);
        let seq = self.check_receipt(receipt)?;
        Ok(self.complete(seq, now))
    }

    /// Deletes message `seq` as done, whatever its state.
    fn complete(&mut self, seq: Seq, now: Timestamp) -> Acked {
        let mut message = self.detach(seq);
        message.push_history(HistoryEvent {
            kind: HistoryEventKind::Acked,
            at: now,
            receive_count: message.receive_count,
            detail: None,
        });
        let message = message.into_parts();
        self.stats.acked_total += 1;
        self.archive.insert(
            message.id,
            MessageStatus::Completed,
            message.history,
            now,
            self.limits.status_records_max,
        );
        Acked {
            id: message.id,
            sent_at: message.sent_at,
            receive_count: message.receive_count,
            notify: message.notify,
        }
    }

    /// Gives the message back: visible after `delay_ms`, or after the queue's retry backoff, or
    /// at once. A message that has used up its receives goes to the dead-letter queue instead.
    pub fn nack(
        &mut self,
        now: Timestamp,
        receipt: &ReceiptHandle,
        delay_ms: Option<u64>,
    ) -> Result<(), ReceiptError> {
        self.advance(now);
        let seq = self.check_receipt(receipt)?;
        self.stats.nacked_total += 1;
        let delay_ms = delay_ms
            .map(|d| d.min(VISIBILITY_TIMEOUT_MS_MAX))
            .or_else(|| {
                let message = self.messages.get(seq)?;
                Some(self.config.retry?.delay_ms(message.receive_count, seq))
            });
        self.end_lease(seq, now, delay_ms.unwrap_or(0), "nacked");
        Ok(())
    }

    /// Sets the lease to end `timeout_ms` from now; 0 releases the message at once.
    pub fn change_visibility(
        &mut self,
        now: Timestamp,
        receipt: &ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<(), ReceiptError> {
        self.advance(now);
        let seq = self.check_receipt(receipt)?;
        self.retime(seq, now, timeout_ms);
        Ok(())
    }

    /// Makes the lease on in-flight message `seq` end `timeout_ms` from now (0: at once).
    fn retime(&mut self, seq: Seq, now: Timestamp, timeout_ms: u64) {
        if timeout_ms == 0 {
            self.stats.nacked_total += 1;
            self.end_lease(seq, now, 0, "released");
            return;
        }
        let message = self.messages.get_mut(seq).expect("leased messages exist");
        let State::InFlight { deadline, lease } = message.state() else {
            unreachable!("only leased messages are retimed")
        };
        let new_deadline = now.plus_ms(timeout_ms.min(VISIBILITY_TIMEOUT_MS_MAX));
        message.set_state(State::InFlight {
            deadline: new_deadline,
            lease,
        });
        self.leases.remove(&(deadline, seq));
        self.leases.insert((new_deadline, seq));
    }

    /// SQS's `DeleteMessage`: deletes the message `receipt` was issued for, by any receipt of
    /// it, not only the current lease's: an expired receipt, or one superseded by a later
    /// receive, still deletes it (as SQS does on a standard queue; ignoring the delete would
    /// have the message processed again). On a FIFO queue the message must be in flight, under
    /// any of its leases: SQS refuses the receipt of a message whose lease ended and was not
    /// renewed ("the receipt handle has expired"), and so does this, with `Stale`.
    /// `Ok(None)` when the message is no longer here (deleted already, dead-lettered,
    /// expired, purged): nothing to do.
    pub fn delete(
        &mut self,
        now: Timestamp,
        receipt: &ReceiptHandle,
    ) -> Result<Option<Acked>, ReceiptError> {
        self.advance(now);
        let seq = self.issued(receipt)?;
        let Some(message) = self.messages.get(seq) else {
            return Ok(None);
        };
        if self.config.fifo && !message.is_in_flight() {
            return Err(ReceiptError::Stale);
        }
        Ok(Some(self.complete(seq, now)))
    }

    /// SQS's `ChangeMessageVisibility`: by any receipt issued for the message, sets the lease
    /// it is under now to end `timeout_ms` from now (0 releases it). A message not in flight is
    /// left as it is.
    pub fn change_visibility_of_message(
        &mut self,
        now: Timestamp,
        receipt: &ReceiptHandle,
        timeout_ms: u64,
    ) -> Result<VisibilityOutcome, ReceiptError> {
        self.advance(now);
        let seq = self.issued(receipt)?;
        match self.messages.get(seq) {
            None => Ok(VisibilityOutcome::Gone),
            Some(message) if !message.is_in_flight() => Ok(VisibilityOutcome::NotInFlight),
            Some(_) => {
                self.retime(seq, now, timeout_ms);
                Ok(VisibilityOutcome::Changed)
            }
        }
    }

    /// Ends the lease on in-flight message `seq`: back to delayed or visible, or to the
    /// dead-letter queue if it has been received `max_receive_count` times.
    pub(super) fn end_lease(&mut self, seq: Seq, now: Timestamp, delay_ms: u64, why: &str) {
        let message = self.messages.get_mut(seq).expect("leased messages exist");
        let State::InFlight { deadline, .. } = message.state() else {
            unreachable!("only leased messages end a lease")
        };
        message.push_history(HistoryEvent {
            kind: HistoryEventKind::Nacked,
            at: now,
            receive_count: message.receive_count,
            detail: Some(why.to_string()),
        });
        if let Some(dead_letter) = &self.config.dead_letter {
            if message.receive_count >= dead_letter.max_receive_count {
                self.dead_letter(seq, now);
                return;
            }
        }
        self.leases.remove(&(deadline, seq));
        let visible_at = now.plus_ms(delay_ms);
        let state = if now < visible_at {
            State::Delayed { until: visible_at }
        } else {
            State::Visible
        };
        message.set_state(state);
        match state {
            State::Delayed { until } => {
                self.delayed.insert((until, seq));
            }
            State::Visible => self.n_visible += 1,
            State::InFlight { .. } => unreachable!(),
        }
        let visible = state == State::Visible;
        let group = message.group_id().cloned();
        match &mut self.ready {
            Ready::Standard(ready) => {
                if visible {
                    ready.insert(seq);
                }
            }
            Ready::Fifo(fifo) => {
                let group = group.expect("FIFO messages always have a group");
                let entry = fifo
                    .groups
                    .get_mut(&group)
                    .expect("groups with leases exist");
                entry.in_flight -= 1;
                entry.pending.insert(seq);
                fifo.refresh(&group, &self.messages);
            }
        }
    }

    fn dead_letter(&mut self, seq: Seq, now: Timestamp) {
        let Some(policy) = self.config.dead_letter.clone() else {
            unreachable!("dead_letter is only called with a policy")
        };
        let mut message = self.detach(seq);
        message.push_history(HistoryEvent {
            kind: HistoryEventKind::DeadLettered,
            at: now,
            receive_count: message.receive_count,
            detail: Some(format!("moved to {}", policy.queue)),
        });
        let message = message.into_parts();
        self.stats.dead_lettered_total += 1;
        self.archive.insert(
            message.id,
            MessageStatus::DeadLettered,
            message.history.clone(),
            now,
            self.limits.status_records_max,
        );
        self.moved_out.push(MovedMessage {
            id: message.id,
            body: message.body,
            attributes: message.attributes,
            group_id: message.group_id,
            dedup_id: message.dedup_id,
            notify: message.notify,
            sent_at: message.sent_at,
            source: self.name.clone(),
            dead_letter_source: Some(self.name.clone()),
            history: message.history,
        });
    }
}
