//! The `wire_frames` fuzz target's check (`fuzz/src/proto.rs`) in the normal test suite: its
//! seed corpus and kept crash inputs replayed, and the seeds made here with the codec's own
//! encoders (`BATON_WRITE_FUZZ_SEEDS=1 cargo test -p baton-proto --test fuzz_corpus` rewrites
//! `fuzz/corpus/wire_frames/`).
#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/proto.rs"]
mod checks;
#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use baton_proto::wire::{self, Op, ReceivedItem, Status};

/// A frame without its length prefix, after the target's selector byte.
fn frame(selector: u8, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    let start = wire::begin_frame(&mut out);
    write(&mut out);
    wire::end_frame(&mut out, start);
    out[0] = selector;
    out.drain(1..wire::LENGTH_BYTES);
    out
}

#[test]
fn fuzz_seeds_are_frames_the_codec_writes() {
    let send = frame(0, |out| {
        wire::request_head(out, Op::Send, 1, "orders");
        wire::put_count(out, 2);
        wire::put_send_message(out, "plain", b"");
        wire::put_send_message(
            out,
            "{\"order\":42}",
            br#"{"attributes":{"kind":"gift"},"group_id":"g-1","dedup_id":"d-1","delay_ms":500}"#,
        );
    });
    let receive = frame(0, |out| {
        wire::request_head(out, Op::Receive, 2, "orders");
        out.extend_from_slice(br#"{"max":10,"wait_ms":20000}"#);
    });
    let ack = frame(1, |out| {
        wire::request_head(out, Op::Ack, 3, "orders");
        out.extend_from_slice(br#"{"receipts":["AAAAAAAAAAEAAAAB"]}"#);
    });
    let received = frame(2, |out| {
        wire::response_head(out, Status::Ok, 2);
        wire::put_count(out, 1);
        let item = ReceivedItem {
            id: "0190c6c8-7a3b-7000-8000-000000000001",
            receipt: "AAAAAAAAAAEAAAAB",
            seq: 1,
            receive_count: 1,
            sent_at: 1_700_000_000_000,
            first_received_at: 1_700_000_000_005,
            group_id: Some("g-1"),
            dedup_id: None,
            attributes: br#"{"kind":"gift"}"#,
            body: "{\"order\":42}",
        };
        wire::put_received(out, 0, &item).unwrap();
    });
    let error = frame(2, |out| {
        wire::response_head(out, Status::Error, 4);
        out.extend_from_slice(
            br#"{"status":404,"error":{"code":"queue_not_found","message":"queue orders does not exist"}}"#,
        );
    });
    replay::seeds(
        "wire_frames",
        checks::wire_frames,
        &[
            ("send", send),
            ("receive", receive),
            ("ack", ack),
            ("received", received),
            ("error", error),
        ],
    );
}

#[test]
fn fuzz_corpus_and_regressions_pass_their_checks() {
    replay::replay("wire_frames", checks::wire_frames);
}
