//! The storage fuzz targets' checks (`fuzz/src/storage.rs`) in the normal test suite: their
//! seed corpus and kept crash inputs replayed, and the seeds themselves, made here from
//! records the real encoders and the real WAL writer produce (`BATON_WRITE_FUZZ_SEEDS=1
//! cargo test -p baton-storage --test it fuzz_seeds` rewrites `fuzz/corpus/`).

#[path = "../../../../fuzz/src/storage.rs"]
mod checks;
#[path = "../../../../fuzz/src/replay.rs"]
mod replay;

use std::sync::Arc;

use baton_storage::lock_records::{
    LockCheckpointPart, LockOp, LockV1, KIND_LOCK_CHECKPOINT, KIND_LOCK_OP,
};
use baton_storage::records::{
    self, AttributeDataV1, AttributeV1, CheckpointPart, EntryV1, QueueOp, ReceiptV1,
    KIND_CHECKPOINT, KIND_QUEUE_OP,
};
use baton_storage::stream_records::{StreamOp, StreamRecordV1, KIND_STREAM_OP};
use baton_storage::{checkpoint, wal as wal_mod, FileSystem, SimFs};

use crate::{dir, fresh_end, open};

fn queue_ops() -> Vec<(u8, Vec<u8>)> {
    let send = QueueOp::Send {
        queue: "orders".to_string(),
        now: 1_700_000_000_000,
        entries: vec![EntryV1 {
            id: 0x0123_4567_89ab_cdef,
            body: Arc::from("{\"order\":42}"),
            attributes: vec![AttributeV1 {
                name: "kind".to_string(),
                data_type: "String".to_string(),
                data: AttributeDataV1::Text("gift".to_string()),
            }],
            delay_ms: Some(500),
            group_id: None,
            dedup_id: None,
            notify: None,
        }],
    };
    let ack = QueueOp::Ack {
        queue: "orders".to_string(),
        now: 1_700_000_000_300,
        receipts: vec![ReceiptV1 { seq: 1, lease: 1 }],
    };
    let lock = LockOp::Granted {
        name: "leader".to_string(),
        holder: "node-1".to_string(),
        token: 7,
        acquired_at: 1_700_000_000_000,
        expires_at: 1_700_000_030_000,
    };
    vec![
        (KIND_QUEUE_OP, records::encode(&send)),
        (KIND_QUEUE_OP, records::encode(&ack)),
        (KIND_LOCK_OP, records::encode(&lock)),
    ]
}

fn stream_ops() -> Vec<(u8, Vec<u8>)> {
    let record = StreamOp::Record(StreamRecordV1 {
        partition: 0,
        offset: 0,
        timestamp: 1_700_000_000_000,
        key: Some("user-1".to_string()),
        value: "clicked".to_string(),
        headers: vec![("source".to_string(), "web".to_string())],
        producer: Some(("p-1".to_string(), 1)),
        batch_index: 0,
        batch_len: 1,
        now: 1_700_000_000_000,
    });
    let acked = StreamOp::Acked {
        group: "billing".to_string(),
        ids: vec![(0, 0)],
    };
    vec![
        (KIND_STREAM_OP, records::encode(&record)),
        (KIND_STREAM_OP, records::encode(&acked)),
    ]
}

/// A segment as the real writer leaves it (zero-filled space ahead cut off).
async fn segment(records: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let fs = SimFs::new();
    let wal = open(&fs, &fresh_end(), 1 << 20);
    for (kind, payload) in records {
        let lsn = wal.submit(*kind, payload).unwrap();
        wal.wait_durable(lsn).await.unwrap();
    }
    wal.close();
    let (_, path) = wal_mod::list_segments(&fs, &dir()).unwrap().remove(0);
    let mut bytes = fs.contents(&path).unwrap();
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    bytes
}

/// An input holding a file verbatim.
fn raw(file: &[u8]) -> Vec<u8> {
    let mut input = vec![checks::RAW];
    input.extend_from_slice(file);
    input
}

/// A program input: a frame of `kind` around `payload` (one-byte length), per record.
fn program(records: &[(u8, Vec<u8>)], tail: &[u8]) -> Vec<u8> {
    let mut input = vec![0];
    for (kind, payload) in records {
        input.extend_from_slice(&[0x80, *kind, payload.len().min(255) as u8]);
        input.extend_from_slice(&payload[..payload.len().min(255)]);
    }
    // A new segment, one more frame, then raw bytes: a torn tail.
    input.extend_from_slice(&[7, 0, 0x80, KIND_QUEUE_OP, 3, 5, 1, b'q']);
    input.push(5);
    input.push(tail.len() as u8);
    input.extend_from_slice(tail);
    input
}

#[tokio::test]
async fn fuzz_seeds_are_real_segments_and_checkpoints() {
    let log = segment(&queue_ops()).await;
    let torn = log[..log.len() - 3].to_vec();
    replay::seeds(
        "wal_replay",
        checks::wal_replay,
        &[
            ("segment", raw(&log)),
            ("segment-torn", raw(&torn)),
            ("program", program(&queue_ops(), &[9, 0, 0, 0, 1, 2])),
        ],
    );

    let stream = segment(&stream_ops()).await;
    replay::seeds(
        "stream_log",
        checks::stream_log,
        &[
            ("segment", raw(&stream)),
            ("program", program(&stream_ops(), &[0xff; 4])),
        ],
    );

    let fs = SimFs::new();
    let parts = vec![
        (
            KIND_CHECKPOINT,
            records::encode(&CheckpointPart::Start { start_lsn: 9 }),
        ),
        (
            KIND_LOCK_CHECKPOINT,
            records::encode(&LockCheckpointPart::Locks {
                covered_lsn: 9,
                token_floor: 3,
                locks: vec![LockV1 {
                    name: "leader".to_string(),
                    last_token: 7,
                    hold: None,
                }],
            }),
        ),
    ];
    let path = checkpoint::write(&fs, &dir(), 9, parts.clone()).unwrap();
    let file = fs.read(&path).unwrap();
    let mut structured = vec![0x10];
    for (kind, payload) in &parts {
        structured.extend_from_slice(&[0, *kind, payload.len() as u8]);
        structured.extend_from_slice(payload);
    }
    replay::seeds(
        "checkpoint_load",
        checks::checkpoint_load,
        &[("checkpoint", raw(&file)), ("program", structured)],
    );
}

#[test]
fn fuzz_corpus_and_regressions_pass_their_checks() {
    for (target, check) in [
        ("wal_replay", checks::wal_replay as fn(&[u8])),
        ("stream_log", checks::stream_log),
        ("checkpoint_load", checks::checkpoint_load),
    ] {
        replay::replay(target, check);
    }
}
