//! Receives: leasing messages of one queue, with the long poll (registered for the queue's
//! `Notify` before looking, so a send in between still wakes it) and its bound on waiters.

use super::*;

impl LocalEngine {
    pub(super) async fn receive_queue(
        &self,
        name: &QueueName,
        options: ReceiveOptions,
    ) -> Result<Vec<Delivery>, EngineError> {
        let started = tokio::time::Instant::now();
        let mut permit = None;
        loop {
            self.check_ready()?;
            let slot = self
                .queues
                .read()
                .get(name)
                .cloned()
                .ok_or_else(|| not_found(name))?;
            let notified = slot.visible.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ((deliveries, wait_ms, next_visible_in), _unsynced_lsn) =
                self.with_queue(name, Access::Write, |queue, now, journal| {
                    let wait_ms = options.wait_ms.unwrap_or(queue.config().receive_wait_ms);
                    let deliveries = queue.receive(now, options.max, options.visibility_timeout_ms);
                    if matches!(&deliveries, Ok(d) if !d.is_empty()) {
                        journal.push(|| QueueOp::Receive {
                            queue: name.to_string(),
                            now: now.as_millis(),
                            max: options.max,
                            visibility_timeout_ms: options.visibility_timeout_ms,
                        });
                    }
                    let next_visible_in = queue.next_visible_at().map(|at| at.millis_since(now));
                    (deliveries, wait_ms, next_visible_in)
                })?;
            let deliveries = deliveries?;
            if !deliveries.is_empty() {
                // A receive is logged but answered without waiting for its sync: leases are not
                // durable anyway, and any later ack, nack or visibility change of these
                // messages waits for a later position in the log, so it covers this record
                // too. A crash can only forget the receive counts of the last unsynced
                // receives (the messages come back, as every leased message does).
                return Ok(deliveries);
            }
            let deadline = started + Duration::from_millis(wait_ms);
            let now = tokio::time::Instant::now();
            if now >= deadline || self.shutdown.is_cancelled() {
                return Ok(deliveries);
            }
            if permit.is_none() {
                permit = Some(self.acquire_wait_permit()?);
            }
            let wake_at = match next_visible_in {
                Some(ms) => deadline.min(now + Duration::from_millis(ms)),
                None => deadline,
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }
}
