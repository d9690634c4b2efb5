//! Stream logs on a failing or filling disk: appends are refused, reads and group work go on,
//! and the log reopens by itself once the disk works or has room.

#![allow(clippy::unwrap_used)]

use baton_core::stream::{GroupMode, RecordId};
use baton_storage::SimFs;

use super::tests::*;
use super::*;
use crate::Engine;
use crate::StreamEngine;
use crate::StreamEngineError;

#[tokio::test]
async fn a_failed_log_refuses_appends_keeps_reads_and_reopens_once_the_disk_works() {
    let fs = SimFs::new();
    let engine = durable(&fs, clock()).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .append(&s("s"), None, vec![record(None, "a")])
        .await
        .unwrap();
    fs.fail_writes(Some(std::io::ErrorKind::Other));
    assert!(matches!(
        engine.append(&s("s"), None, vec![record(None, "b")]).await,
        Err(StreamEngineError::Engine(
            EngineError::StorageUnavailable { .. }
        ))
    ));
    assert!(matches!(
        engine.append(&s("s"), None, vec![record(None, "c")]).await,
        Err(StreamEngineError::Engine(
            EngineError::StorageUnavailable { .. }
        ))
    ));
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(values(&read.records), vec!["a"]);
    // While the disk still fails, the reopen fails too and appends stay refused.
    engine.tick().await;
    assert!(engine
        .append(&s("s"), None, vec![record(None, "d")])
        .await
        .is_err());
    fs.fail_writes(None);
    *engine.streams.last_reopen.lock() = None;
    engine.tick().await;
    engine
        .append(&s("s"), None, vec![record(None, "e")])
        .await
        .unwrap();
    let read = engine
        .read_stream(&s("s"), 0, ReadFrom::Offset(0), 10, 0)
        .await
        .unwrap();
    assert_eq!(values(&read.records), vec!["a", "e"]);
}

#[tokio::test]
async fn appends_are_refused_while_the_disk_is_low_and_group_reads_and_acks_go_on() {
    let fs = SimFs::new();
    fs.set_capacity(Some(1 << 20));
    let engine = durable_with(&fs, clock(), 256 * 1024).await;
    engine.create_stream(s("s"), config(1)).await.unwrap();
    engine
        .create_group(&s("s"), g("g"), group_config(GroupMode::Shared))
        .await
        .unwrap();
    engine
        .append(&s("s"), None, vec![record(None, "a"), record(None, "b")])
        .await
        .unwrap();
    fs.set_capacity(Some(fs.used_bytes() + 128 * 1024));
    engine.tick().await;
    let refused = engine.append(&s("s"), None, vec![record(None, "c")]).await;
    assert!(
        matches!(
            refused,
            Err(StreamEngineError::Engine(EngineError::DiskLow {
                min_bytes: 262_144,
                ..
            }))
        ),
        "{refused:?}"
    );
    let got = engine
        .group_read(&s("s"), &g("g"), &c("w"), 10, 0)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let acked = engine
        .group_ack(
            &s("s"),
            &g("g"),
            got.iter()
                .map(|r| RecordId {
                    partition: r.record.partition,
                    offset: r.record.offset,
                })
                .collect(),
        )
        .await
        .unwrap();
    assert!(acked.iter().all(Result::is_ok));
    fs.set_capacity(Some(fs.used_bytes() + 512 * 1024));
    engine.tick().await;
    engine
        .append(&s("s"), None, vec![record(None, "c")])
        .await
        .unwrap();
}
