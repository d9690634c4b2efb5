//! The crash test's probes and final checks: receipts from before a restart, deduplication
//! across restarts, the drain after the last restart and what it must find.

use super::*;

/// Acks receipts issued before the restart: each lease ended with the restart, so each must
/// be refused as stale (the consumers of this run may hold the same messages by now).
pub(super) async fn probe_old_receipts(ctx: &Ctx, url: &str, old: Vec<OldReceipt>) -> usize {
    let mut probed = 0;
    for target in Target::ALL {
        let batch: Vec<&OldReceipt> = old
            .iter()
            .filter(|o| o.target == target)
            .take(OLD_RECEIPTS_MAX)
            .collect();
        if batch.is_empty() {
            continue;
        }
        probed += batch.len();
        let request =
            json!({"receipts": batch.iter().map(|o| o.receipt.as_str()).collect::<Vec<_>>()});
        let reply = match call(
            &ctx.client,
            Method::POST,
            &ack_url(url, target),
            Some(&request),
        )
        .await
        {
            Ok((200, reply)) => reply,
            other => {
                ctx.violation(format!(
                    "ack of old receipts on {} answered {other:?}",
                    target.queue()
                ));
                continue;
            }
        };
        let results = reply["results"].as_array().cloned().unwrap_or_default();
        if results.len() != batch.len() {
            ctx.violation(format!(
                "ack of {} old receipts answered: {reply}",
                batch.len()
            ));
            continue;
        }
        for (old, result) in batch.iter().zip(&results) {
            if *result == json!({"ok": true}) {
                // The broker says it is acked, so it must not come back either.
                ctx.state().ledgers[target.index()]
                    .acked
                    .insert(old.body.clone());
                ctx.violation(format!(
                    "a receipt issued before the restart acked {} in {}: {}",
                    old.body,
                    target.queue(),
                    old.receipt
                ));
            } else if result["error"]["code"] != json!("receipt_stale") {
                ctx.violation(format!(
                    "a receipt issued before the restart for {} in {} answered {result}, not receipt_stale",
                    old.body,
                    target.queue()
                ));
            }
        }
    }
    probed
}

/// Sends acknowledged FIFO bodies again: content-based deduplication (5 minutes) must still
/// recognise them after the restart, with the original id.
pub(super) async fn probe_dedup(ctx: &Ctx, url: &str, rng: &mut Rng) {
    let probes: Vec<(String, String)> = {
        let state = ctx.state();
        let ledger = &state.ledgers[Target::Fifo.index()];
        if ledger.sent_order.is_empty() {
            return;
        }
        (0..DEDUP_PROBES)
            .map(|_| {
                let body =
                    &ledger.sent_order[rng.range(0, ledger.sent_order.len() as u64 - 1) as usize];
                (body.clone(), ledger.sent[body].clone())
            })
            .collect()
    };
    for (body, id) in probes {
        let request = json!({"messages": [send_entry(Target::Fifo, &body)]});
        match call(&ctx.client, Method::POST, &messages_url(url, Target::Fifo), Some(&request)).await {
            Ok((200, reply))
                if reply["messages"][0]["duplicate"] == json!(true)
                    && reply["messages"][0]["id"] == json!(id) => {}
            other => ctx.violation(format!(
                "resending {body} (id {id}) to {FIFO_QUEUE} after a restart was not answered as its duplicate: {other:?}"
            )),
        }
    }
}

/// Receives and acks until the queue is empty; returns the bodies in receive order.
pub(super) async fn drain(
    ctx: &Ctx,
    url: &str,
    target: Target,
    failures: &mut Vec<String>,
) -> Vec<String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let request =
        json!({"max": DRAIN_BATCH, "wait_ms": 0, "visibility_timeout_ms": DRAIN_LEASE_MS});
    let mut bodies = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "drain of {} took over {DRAIN_TIMEOUT:?}",
            target.queue()
        );
        let (status, reply) = call(
            &ctx.client,
            Method::POST,
            &receive_url(url, target),
            Some(&request),
        )
        .await
        .unwrap();
        assert_eq!(
            status,
            200,
            "drain receive from {}: {reply}",
            target.queue()
        );
        let messages = reply["messages"].as_array().cloned().unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        let mut receipts = Vec::new();
        for message in &messages {
            bodies.push(message["body"].as_str().unwrap().to_string());
            receipts.push(message["receipt"].as_str().unwrap().to_string());
        }
        let (status, reply) = call(
            &ctx.client,
            Method::POST,
            &ack_url(url, target),
            Some(&json!({"receipts": receipts})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "drain ack on {}: {reply}", target.queue());
        let results = reply["results"].as_array().cloned().unwrap_or_default();
        if results.len() != receipts.len() || results.iter().any(|r| *r != json!({"ok": true})) {
            failures.push(format!("drain ack on {} answered {reply}", target.queue()));
        }
    }
}

/// The three promises, plus no duplicates and FIFO order, for one drained queue.
pub(super) fn check_drained(
    target: Target,
    ledger: &Ledger,
    drained: &[String],
    failures: &mut Vec<String>,
) {
    let queue = format!("queue {}", target.queue());
    let drained_set: HashSet<&String> = drained.iter().collect();
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for body in drained {
        *counts.entry(body).or_default() += 1;
    }
    let mut twice: Vec<&&String> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(b, _)| b)
        .collect();
    twice.sort();
    if !twice.is_empty() {
        failures.push(format!(
            "{queue}: {} bodies drained more than once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(10)]
        ));
    }
    let mut lost: Vec<&String> = ledger
        .sent
        .keys()
        .filter(|b| {
            !drained_set.contains(b)
                && !ledger.acked.contains(*b)
                && !ledger.ack_unknown.contains(*b)
        })
        .collect();
    lost.sort();
    if !lost.is_empty() {
        failures.push(format!(
            "{queue}: {} acknowledged sends lost (neither drained nor acked), e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        ));
    }
    let mut came_back: Vec<&&String> = drained_set
        .iter()
        .filter(|b| ledger.acked.contains(**b))
        .collect();
    came_back.sort();
    if !came_back.is_empty() {
        failures.push(format!(
            "{queue}: {} messages whose ack was answered ok came back, e.g. {:?}",
            came_back.len(),
            &came_back[..came_back.len().min(10)]
        ));
    }
    let mut never_sent: Vec<&&String> = drained_set
        .iter()
        .filter(|b| !ledger.attempted.contains(**b))
        .collect();
    never_sent.sort();
    if !never_sent.is_empty() {
        failures.push(format!(
            "{queue}: {} drained bodies were never sent, e.g. {:?}",
            never_sent.len(),
            &never_sent[..never_sent.len().min(10)]
        ));
    }
    if target == Target::Fifo {
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for body in drained {
            let number = fifo_number(body);
            if let Some(previous) = last.insert(fifo_group(body), number) {
                if previous >= number {
                    failures.push(format!(
                        "{queue}: drained {body} after f-{previous:010} of the same group"
                    ));
                    break;
                }
            }
        }
    }
}

pub(super) async fn queue_stats(ctx: &Ctx, url: &str, target: Target) -> Value {
    let (status, reply) = call(
        &ctx.client,
        Method::GET,
        &format!("{url}/v1/queues/{}", target.queue()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "stats of {}: {reply}", target.queue());
    reply["stats"].clone()
}

/// An empty queue: nothing visible, in flight or delayed, and every message ever stored acked.
/// `settled` are the bodies known to have been acked exactly once (acked during the run or
/// drained), `maybe` those whose ack may or may not have taken effect.
pub(super) fn check_empty_stats(
    target: Target,
    stats: &Value,
    settled: usize,
    maybe: usize,
    when: &str,
    failures: &mut Vec<String>,
) {
    let queue = format!("queue {}", target.queue());
    let field = |name: &str| stats[name].as_u64().unwrap_or(u64::MAX);
    if field("visible") != 0 || field("in_flight") != 0 || field("delayed") != 0 {
        failures.push(format!("{queue} {when}: not empty: {stats}"));
    }
    let stored = field("sent_total").wrapping_sub(field("duplicates_total"));
    if stored != field("acked_total") {
        failures.push(format!(
            "{queue} {when}: sent_total − duplicates_total ≠ acked_total: {stats}"
        ));
    }
    let acked = field("acked_total") as usize;
    if acked < settled || acked > settled + maybe {
        failures.push(format!(
            "{queue} {when}: acked_total {acked} outside [{settled}, {}]: {stats}",
            settled + maybe
        ));
    }
}
