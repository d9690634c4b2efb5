//! Power loss at random moments under concurrent load loses no acknowledged message and
//! brings back no acked one.

use baton_storage::SimRun;

use super::*;

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
        let engine = Arc::new(
            LocalEngine::durable(
                clock.clone(),
                EngineConfig::default(),
                Arc::new(fs.clone()),
                storage.clone(),
                false,
            )
            .unwrap(),
        );
        engine.reload().unwrap();
        engine
            .create_queue(name("q"), QueueConfig::default())
            .await
            .unwrap();
        let acknowledged = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        let acked = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        // Acks that failed (the power went off under them): a record written but not synced
        // may survive in a torn prefix, so these messages may or may not be gone afterwards.
        let maybe_acked = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        let mut tasks = Vec::new();
        for producer in 0..4u64 {
            let (engine, acknowledged) = (engine.clone(), acknowledged.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..200u64 {
                    let bodies: Vec<String> = (0..1 + n % 4)
                        .map(|i| format!("p{producer}-{n}-{i}"))
                        .collect();
                    let entries = bodies
                        .iter()
                        .map(|b| SendEntry::new(new_message_id(), b.as_str()))
                        .collect();
                    match engine.send(&name("q"), entries).await {
                        Ok(_) => acknowledged.lock().extend(bodies),
                        Err(_) => return,
                    }
                }
            }));
        }
        for _ in 0..2 {
            let (engine, acked, maybe_acked) = (engine.clone(), acked.clone(), maybe_acked.clone());
            tasks.push(tokio::spawn(async move {
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
                                acked.lock().insert(delivery.body.to_string());
                            }
                            Ok(_) => {}
                            Err(_) => {
                                maybe_acked.lock().insert(delivery.body.to_string());
                                return;
                            }
                        }
                    }
                    engine.tick().await;
                    tokio::task::yield_now().await;
                }
            }));
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

        let engine = LocalEngine::durable(
            clock,
            EngineConfig::default(),
            Arc::new(fs.clone()),
            storage,
            false,
        )
        .unwrap();
        engine.reload().unwrap();
        let mut drained = BTreeSet::new();
        loop {
            let options = ReceiveOptions {
                max: 1000,
                wait_ms: Some(0),
                visibility_timeout_ms: Some(600_000),
            };
            let got = engine.receive(&name("q"), options).await.unwrap();
            if got.is_empty() {
                break;
            }
            drained.extend(got.iter().map(|d| d.body.to_string()));
        }
        let acknowledged = acknowledged.lock();
        let acked = acked.lock();
        let maybe_acked = maybe_acked.lock();
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
}
