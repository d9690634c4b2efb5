//! The `wire_frames` target: the framed protocol's codec (`baton_proto::wire`), both sides —
//! the server decodes requests and send payloads, a client decodes responses and receive
//! answers — on arbitrary frames. The checks: nothing panics; a decoded request, send payload
//! or receive answer encodes back to the very bytes it came from (the format has one encoding
//! per value, except an absent id or receipt, which decodes as empty); counts never exceed
//! what the bytes can hold.
//!
//! Shared with `crates/baton-proto/tests/fuzz_corpus.rs`, so it uses nothing but `baton-proto`
//! and `serde_json`.

use baton_proto::wire::{self, FrameError, Op, Status};

/// Byte 0 picks the decoder; the rest is the frame (after its length prefix).
pub fn wire_frames(input: &[u8]) {
    let Some((selector, frame)) = input.split_first() else {
        return;
    };
    match selector % 4 {
        0 | 1 => request(frame),
        2 => response(frame),
        _ => {
            send_payload(frame);
            received_payload(frame);
        }
    }
}

fn request(frame: &[u8]) {
    let id = wire::request_id(frame);
    let Ok(request) = wire::decode_request(frame) else {
        return;
    };
    assert_eq!(
        id,
        Some(request.id),
        "request_id disagrees with decode_request"
    );
    let mut out = Vec::new();
    wire::request_head(&mut out, request.op, request.id, request.queue);
    out.extend_from_slice(request.payload);
    assert_eq!(out, frame, "a decoded request encodes to other bytes");
    match request.op {
        Op::Send => send_payload(request.payload),
        Op::Receive | Op::Ack | Op::Nack => {
            let _ = serde_json::from_slice::<serde_json::Value>(request.payload);
        }
        // The payload is the key, any bytes; the server checks it is UTF-8.
        Op::Auth => {
            let _ = std::str::from_utf8(request.payload);
        }
    }
}

fn response(frame: &[u8]) {
    let Ok(response) = wire::decode_response(frame) else {
        return;
    };
    let mut out = Vec::new();
    wire::response_head(&mut out, response.status, response.id);
    out.extend_from_slice(response.payload);
    assert_eq!(out, frame, "a decoded response encodes to other bytes");
    match response.status {
        Status::Ok => received_payload(response.payload),
        Status::Error => {
            let _ = serde_json::from_slice::<wire::WireError>(response.payload);
        }
    }
}

fn send_payload(payload: &[u8]) {
    let items = match wire::decode_send(payload) {
        Ok(items) => items,
        Err(FrameError::CountTooLarge { count }) => {
            assert!(count as usize * 8 > payload.len().saturating_sub(4));
            return;
        }
        Err(_) => return,
    };
    assert!(
        items.len() * 8 <= payload.len(),
        "more messages than the payload can hold"
    );
    let mut out = Vec::new();
    wire::put_count(&mut out, items.len());
    for item in &items {
        wire::put_send_message(&mut out, item.body, item.meta);
        if !item.meta.is_empty() {
            if let Ok(meta) = serde_json::from_slice::<wire::SendMeta>(item.meta) {
                let json = serde_json::to_vec(&meta).expect("a SendMeta serializes");
                let again: wire::SendMeta =
                    serde_json::from_slice(&json).expect("a serialized SendMeta parses");
                assert_eq!(again, meta, "a SendMeta changed through JSON");
            }
        }
    }
    assert_eq!(
        out, payload,
        "a decoded send payload encodes to other bytes"
    );
}

fn received_payload(payload: &[u8]) {
    let Ok(items) = wire::decode_received(payload) else {
        return;
    };
    assert!(
        items.len() * 8 <= payload.len(),
        "more messages than the payload can hold"
    );
    let mut out = Vec::new();
    wire::put_count(&mut out, items.len());
    for (index, item) in items.iter().enumerate() {
        wire::put_received(&mut out, index, item).expect("decoded fields fit their lengths");
    }
    let again = wire::decode_received(&out).expect("an encoded receive answer decodes");
    assert_eq!(
        again, items,
        "a receive answer changed through its encoding"
    );
}
