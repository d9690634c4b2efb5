//! Power loss at random moments under concurrent load loses no acknowledged message and
//! brings back no acked one.

use baton_storage::{SimRun, SimSchedule};

use super::*;

/// What the load saw, shared by its tasks.
#[derive(Clone, Default)]
struct Ledger {
    /// Bodies of acknowledged sends.
    acknowledged: Arc<Mutex<BTreeSet<String>>>,
    /// Bodies whose ack succeeded: they must never come back.
    acked: Arc<Mutex<BTreeSet<String>>>,
    /// Acks that failed (the power went off under them): a record written but not synced
    /// may survive in a torn prefix, so these messages may or may not be gone afterwards.
    maybe_acked: Arc<Mutex<BTreeSet<String>>>,
}

/// Sends 200 batches of one to four messages, until the first refusal.
async fn produce(engine: Arc<LocalEngine>, ledger: Ledger, producer: u64) {
    for n in 0..200u64 {
        let bodies: Vec<String> = (0..1 + n % 4)
            .map(|i| format!("p{producer}-{n}-{i}"))
            .collect();
        let entries = bodies
            .iter()
            .map(|b| SendEntry::new(new_message_id(), b.as_str()))
            .collect();
        match engine.send(&name("q"), entries).await {
            Ok(_) => ledger.acknowledged.lock().extend(bodies),
            Err(_) => return,
        }
    }
}

/// Receives up to 400 times and acks every second delivery, until the first failure.
async fn consume(engine: Arc<LocalEngine>, ledger: Ledger) {
    for _ in 0..400 {
        let options = ReceiveOptions {
            max: 5,
            wait_ms: Some(0),
            visibility_timeout_ms: Some(60_000),
        };
        let Ok(got) = engine.receive(&name("q"), options).await else {
            return;
        };
        for delivery in got.iter().step_by(2) {
            match engine.ack(&name("q"), vec![delivery.receipt]).await {
                Ok(results) if results[0].is_ok() => {
                    ledger.acked.lock().insert(delivery.body.to_string());
                }
                Ok(_) => {}
                Err(_) => {
                    ledger.maybe_acked.lock().insert(delivery.body.to_string());
                    return;
                }
            }
        }
        engine.tick().await;
        tokio::task::yield_now().await;
    }
}

/// Receives everything visible after the restart.
async fn drain(engine: &LocalEngine) -> BTreeSet<String> {
    let mut drained = BTreeSet::new();
    loop {
        let options = ReceiveOptions {
            max: 1000,
            wait_ms: Some(0),
            visibility_timeout_ms: Some(600_000),
        };
        let got = engine.receive(&name("q"), options).await.unwrap();
        if got.is_empty() {
            return drained;
        }
        drained.extend(got.iter().map(|d| d.body.to_string()));
    }
}

/// Every acknowledged send is there unless its ack may have landed; no acked one is.
fn check(schedule: &SimSchedule, ledger: &Ledger, drained: &BTreeSet<String>) {
    let acknowledged = ledger.acknowledged.lock();
    let acked = ledger.acked.lock();
    let maybe_acked = ledger.maybe_acked.lock();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|b| !drained.contains(*b) && !acked.contains(*b) && !maybe_acked.contains(*b))
        .collect();
    assert!(
        lost.is_empty(),
        "{schedule}: lost {} acknowledged messages, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let back: Vec<&String> = acked.iter().filter(|b| drained.contains(*b)).collect();
    assert!(
        back.is_empty(),
        "{schedule}: acked messages came back: {back:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_loss_under_concurrent_load_loses_nothing_acknowledged() {
    for schedule in SimRun::from_env(0x5EED, 60).schedules() {
        let mut rng = schedule.rng();
        let fs = SimFs::new();
        let clock: Arc<dyn Clock> = Arc::new(crate::SystemClock);
        let storage = StorageConfig {
            checkpoint_bytes_min: 8192,
            ..storage(0)
        };
        let engine = Arc::new(open_with(&fs, clock.clone(), storage.clone()));
        engine
            .create_queue(name("q"), QueueConfig::default())
            .await
            .unwrap();
        let ledger = Ledger::default();
        let mut tasks = Vec::new();
        for producer in 0..4u64 {
            tasks.push(tokio::spawn(produce(
                engine.clone(),
                ledger.clone(),
                producer,
            )));
        }
        for _ in 0..2 {
            tasks.push(tokio::spawn(consume(engine.clone(), ledger.clone())));
        }
        tokio::time::sleep(std::time::Duration::from_micros(rng.below(20_000))).await;
        fs.power_off(CrashMode::Torn {
            keep_bytes: rng.below(300),
        });
        for task in tasks {
            task.await.unwrap();
        }
        drop(engine);
        fs.fail_writes(None);

        let engine = open_with(&fs, clock, storage);
        let drained = drain(&engine).await;
        check(&schedule, &ledger, &drained);
    }
}
