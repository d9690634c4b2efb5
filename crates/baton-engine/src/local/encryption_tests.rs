//! Encryption at rest in the durable engine: with a key file nothing of a body reaches the
//! disk in plain text (log, checkpoint, stream segments); a restart reads it back; a new key
//! seals from the next start while the old ones keep opening; a missing key stops the start
//! with the key's id instead of losing anything; a plain data dir takes keys without a
//! migration step.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::{ManualClock, StreamConfig, StreamName};
use baton_storage::{Keyring, SimFs, SyncPolicy};

use super::*;
use crate::{Engine, EngineConfig, NewRecord, ReadFrom, StreamEngine};

const NEEDLE: &[u8] = b"needle";

fn key(id: u32) -> (u32, [u8; 32]) {
    (id, [id as u8; 32])
}

fn keyring(ids: &[u32]) -> Option<Arc<Keyring>> {
    let keys: Vec<_> = ids.iter().map(|id| key(*id)).collect();
    Keyring::from_keys(&keys).map(Arc::new)
}

async fn open(fs: &SimFs, keys: Option<Arc<Keyring>>) -> Result<LocalEngine, EngineError> {
    let engine = LocalEngine::durable(
        Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000))),
        EngineConfig::default(),
        Arc::new(fs.clone()),
        StorageConfig {
            data_dir: "/data".into(),
            sync: SyncPolicy::Always,
            segment_bytes_max: 4096,
            checkpoint_bytes_min: 1 << 40,
            repair: false,
            disk_free_min_bytes: 0,
            disk_reserve_bytes: 0,
            keys,
        },
        false,
    )?;
    engine.recover().await?;
    Ok(engine)
}

fn q() -> QueueName {
    QueueName::new("q").unwrap()
}

fn st() -> StreamName {
    StreamName::new("s").unwrap()
}

async fn send(engine: &LocalEngine, body: &str) {
    engine
        .send(&q(), vec![SendEntry::new(crate::new_message_id(), body)])
        .await
        .unwrap();
}

async fn append(engine: &LocalEngine, value: &str) {
    engine
        .append(
            &st(),
            None,
            vec![NewRecord {
                key: Some(format!("{value}-key")),
                value: value.to_string(),
                headers: vec![("h".to_string(), format!("{value}-header"))],
                partition: None,
            }],
        )
        .await
        .unwrap();
}

async fn bodies(engine: &LocalEngine) -> Vec<String> {
    let mut got: Vec<String> = engine
        .receive(
            &q(),
            ReceiveOptions {
                max: 10,
                wait_ms: Some(0),
                visibility_timeout_ms: Some(0),
            },
        )
        .await
        .unwrap()
        .iter()
        .map(|m| m.body.to_string())
        .collect();
    got.sort();
    got
}

async fn records(engine: &LocalEngine) -> Vec<String> {
    engine
        .read_stream(&st(), 0, ReadFrom::Offset(0), 10, 0)
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| r.value.clone())
        .collect()
}

/// Every file the engine wrote (the log, checkpoints and stream segments).
fn files(fs: &SimFs) -> Vec<PathBuf> {
    let dirs = [PathBuf::from("/data/wal"), PathBuf::from("/data/streams/s")];
    dirs.iter()
        .flat_map(|dir| {
            fs.list(dir)
                .unwrap()
                .into_iter()
                .map(|name| dir.join(name))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn plain_text_in(fs: &SimFs) -> Vec<PathBuf> {
    files(fs)
        .into_iter()
        .filter(|path| {
            fs.contents(path)
                .unwrap()
                .windows(NEEDLE.len())
                .any(|w| w == NEEDLE)
        })
        .collect()
}

fn scan(fs: &SimFs, keys: Option<&Keyring>) -> baton_storage::SealScan {
    crate::scan_encryption(fs, Path::new("/data"), keys).unwrap()
}

#[tokio::test]
async fn nothing_reaches_the_disk_in_plain_text_and_a_restart_reads_it_back() {
    let fs = SimFs::new();
    let keys = keyring(&[1]);
    let engine = open(&fs, keys.clone()).await.unwrap();
    engine
        .create_queue(q(), QueueConfig::default())
        .await
        .unwrap();
    engine
        .create_stream(
            st(),
            StreamConfig {
                partitions: 1,
                retention_ms: None,
                retention_bytes: None,
                max_records: None,
            },
        )
        .await
        .unwrap();
    send(&engine, "needle-before-checkpoint").await;
    append(&engine, "needle-record-1").await;
    engine.checkpoint().unwrap();
    send(&engine, "needle-after-checkpoint").await;
    append(&engine, "needle-record-2").await;
    drop(engine);

    assert!(
        files(&fs).iter().any(|p| p.extension().unwrap() == "ckpt"),
        "a checkpoint was written"
    );
    assert_eq!(plain_text_in(&fs), Vec::<PathBuf>::new());
    let report = scan(&fs, keys.as_deref());
    assert_eq!(report.plain_frames, 0);
    assert!(report.sealed_frames[&1] >= 5, "{report:?}");
    assert_eq!(report.undecryptable_frames, 0);

    let engine = open(&fs, keys).await.unwrap();
    assert_eq!(
        bodies(&engine).await,
        ["needle-after-checkpoint", "needle-before-checkpoint"]
    );
    assert_eq!(
        records(&engine).await,
        ["needle-record-1", "needle-record-2"]
    );
}

#[tokio::test]
async fn a_new_key_seals_from_the_next_start_and_old_keys_keep_opening() {
    let fs = SimFs::new();
    let engine = open(&fs, keyring(&[1])).await.unwrap();
    engine
        .create_queue(q(), QueueConfig::default())
        .await
        .unwrap();
    send(&engine, "needle-under-1").await;
    drop(engine);

    let engine = open(&fs, keyring(&[1, 2])).await.unwrap();
    send(&engine, "needle-under-2").await;
    drop(engine);
    let report = scan(&fs, keyring(&[1, 2]).as_deref());
    assert!(report.sealed_frames[&1] > 0 && report.sealed_frames[&2] > 0);
    assert_eq!(report.undecryptable_frames, 0);

    let engine = open(&fs, keyring(&[1, 2])).await.unwrap();
    assert_eq!(bodies(&engine).await, ["needle-under-1", "needle-under-2"]);
    drop(engine);

    // Without key 1 the start stops and says which key is missing; the data stays as it was.
    let before = files(&fs)
        .iter()
        .map(|p| fs.contents(p).unwrap())
        .collect::<Vec<_>>();
    let error = open(&fs, keyring(&[2])).await.err().unwrap().to_string();
    assert!(
        error.contains("encrypted under key 1, which the key file does not hold"),
        "{error}"
    );
    let error = open(&fs, None).await.err().unwrap().to_string();
    assert!(
        error.contains("no encryption key file is configured"),
        "{error}"
    );
    let report = scan(&fs, keyring(&[2]).as_deref());
    assert!(report.undecryptable_frames > 0);
    assert!(report
        .undecryptable
        .iter()
        .all(|frame| frame.error.key_id() == Some(1)));
    let after = files(&fs)
        .iter()
        .map(|p| fs.contents(p).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(before, after, "a refused start changes nothing");

    let engine = open(&fs, keyring(&[1, 2])).await.unwrap();
    assert_eq!(bodies(&engine).await, ["needle-under-1", "needle-under-2"]);
}

#[tokio::test]
async fn a_plain_data_dir_takes_keys_and_seals_what_comes_next() {
    let fs = SimFs::new();
    let engine = open(&fs, None).await.unwrap();
    engine
        .create_queue(q(), QueueConfig::default())
        .await
        .unwrap();
    send(&engine, "needle-plain").await;
    drop(engine);
    assert!(
        !plain_text_in(&fs).is_empty(),
        "without keys bodies are plain"
    );

    let keys = keyring(&[1]);
    let engine = open(&fs, keys.clone()).await.unwrap();
    send(&engine, "needle-sealed").await;
    engine.checkpoint().unwrap();
    drop(engine);
    let report = scan(&fs, keys.as_deref());
    assert!(report.sealed_frames[&1] > 0, "{report:?}");

    let engine = open(&fs, keys).await.unwrap();
    assert_eq!(bodies(&engine).await, ["needle-plain", "needle-sealed"]);
}

#[tokio::test]
async fn a_frame_altered_on_disk_is_refused_not_read() {
    let fs = SimFs::new();
    let keys = keyring(&[1]);
    let engine = open(&fs, keys.clone()).await.unwrap();
    engine
        .create_queue(q(), QueueConfig::default())
        .await
        .unwrap();
    send(&engine, "needle-altered").await;
    drop(engine);
    // A different key under the same id: the tag check fails, nothing is read as garbage.
    let impostor = Keyring::from_keys(&[(1, [0xAB; 32])]).map(Arc::new);
    let error = open(&fs, impostor).await.err().unwrap().to_string();
    assert!(error.contains("does not decrypt under key 1"), "{error}");
    assert_eq!(
        bodies(&open(&fs, keys).await.unwrap()).await,
        ["needle-altered"]
    );
}
