//! The framed TCP protocol ("wire protocol"): the queue calls that carry messages (send,
//! receive, ack, nack) without HTTP, for clients that pipeline many small calls on one
//! connection. docs/wire-protocol.md is the specification; this module is its codec, shared by
//! the server and the SDK, and does no I/O.
//!
//! A connection is an HTTP/1.1 connection upgraded at [`UPGRADE_PATH`], or a connection to a
//! dedicated port. It starts with [`MAGIC`] from the client, echoed by the server. Then both sides
//! exchange frames: a little-endian `u32` length of what follows, then
//! - request: `u8 op`, `u32 id`, `u16 queue length`, the queue name, the op's payload;
//! - response: `u8 status` (0 ok, 1 error), `u32 id` of the request, the payload.
//!
//! Responses may come in any order; the id pairs them with their request. Message bodies travel
//! as raw bytes (no JSON escaping); everything else is the native API's JSON, so options,
//! answers and error bodies mean exactly what they mean over HTTP.
//!
//! Payloads:
//! - `Send`: `u32 count`, then per message `u32 body length`, body (UTF-8), `u32 meta length`,
//!   meta: a JSON [`SendMeta`] object, or nothing for a plain message. Answer: JSON
//!   [`crate::SendResponse`].
//! - `Receive`: a JSON [`crate::ReceiveRequest`] (empty = `{}`). Answer: `u32 count`, then per
//!   message the fields of [`ReceivedItem`] in binary (see [`put_received`]).
//! - `Ack`: JSON [`crate::AckRequest`]; answer JSON [`crate::AckResponse`].
//! - `Nack`: JSON [`crate::NackRequest`]; answer JSON [`crate::BatchResponse`].
//! - `Auth`: the API key (UTF-8), queue name empty; answer JSON [`AuthAnswer`]. Every later
//!   request of the connection acts as that key.
//! - An error answer is the HTTP API's error body, [`WireError`]: `{"status", "error"}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AttributeValue, ErrorDetail, Notify};

/// The `u16` length that marks an absent optional string.
const ABSENT: u16 = u16::MAX;

/// The HTTP path that switches a connection to this protocol: `GET` it with
/// `Connection: Upgrade` and `Upgrade:` [`UPGRADE_PROTOCOL`]; after `101 Switching Protocols`
/// the connection speaks this protocol from [`MAGIC`] on, as on a dedicated port.
pub const UPGRADE_PATH: &str = "/v1/wire";
/// The `Upgrade` header's protocol name for [`UPGRADE_PATH`].
pub const UPGRADE_PROTOCOL: &str = "baton-wire";

/// What a client writes first and the server echoes: "BATONW", then the protocol version 1.
pub const MAGIC: [u8; 8] = *b"BATONW\x00\x01";
/// Bytes of the length prefix of every frame.
pub const LENGTH_BYTES: usize = 4;
/// Bytes of a request's fixed head after the length: op, id, queue length.
pub const REQUEST_HEAD_BYTES: usize = 1 + 4 + 2;
/// Bytes of a response's fixed head after the length: status, id.
pub const RESPONSE_HEAD_BYTES: usize = 1 + 4;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Send = 1,
    Receive = 2,
    Ack = 3,
    Nack = 4,
    /// Authenticates the connection with an API key (the payload); the queue name is empty.
    Auth = 5,
}

impl Op {
    pub fn from_byte(byte: u8) -> Option<Op> {
        match byte {
            1 => Some(Op::Send),
            2 => Some(Op::Receive),
            3 => Some(Op::Ack),
            4 => Some(Op::Nack),
            5 => Some(Op::Auth),
            _ => None,
        }
    }

    /// Its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Op::Send => "send",
            Op::Receive => "receive",
            Op::Ack => "ack",
            Op::Nack => "nack",
            Op::Auth => "auth",
        }
    }
}

/// Whether a response answers its request or reports an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    Ok = 0,
    Error = 1,
}

/// Everything of a native `SendMessage` but its body, for a message that needs more than a
/// body. Unknown fields are refused, as over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMeta {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, AttributeValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
}

impl SendMeta {
    /// Whether the message is a plain one (sent with an empty meta).
    pub fn is_empty(&self) -> bool {
        self == &SendMeta::default()
    }
}

/// An error answer: the HTTP status the same call would have had over HTTP, and the HTTP
/// error body's `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub status: u16,
    pub error: ErrorDetail,
}

/// The answer to an `Auth` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthAnswer {
    /// The key's name; `None` when the server has no keys (every request is served).
    pub key: Option<String>,
    /// When the key expires (ms since the Unix epoch), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// Why bytes are not a valid frame or payload. The frame's connection stays usable: the
/// length prefix still says where the next frame starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame ends inside {what}: {needed} more bytes needed, {left} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        left: usize,
    },
    #[error("unknown op {0}; known: 1 send, 2 receive, 3 ack, 4 nack")]
    UnknownOp(u8),
    #[error("unknown status {0}; known: 0 ok, 1 error")]
    UnknownStatus(u8),
    #[error("the queue name is not UTF-8")]
    QueueNotUtf8,
    #[error("messages[{index}].body is not UTF-8")]
    BodyNotUtf8 { index: usize },
    #[error("messages[{index}].{field} is not UTF-8")]
    FieldNotUtf8 { index: usize, field: &'static str },
    #[error("messages[{index}].{field} is longer than 65534 bytes")]
    FieldTooLong { index: usize, field: &'static str },
    #[error("{count} messages announced but the payload holds fewer")]
    CountTooLarge { count: u32 },
    #[error("{bytes} bytes left over after the payload")]
    TrailingBytes { bytes: usize },
}

/// Reads fixed-size and length-prefixed pieces off a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.bytes.len() < n {
            return Err(FrameError::Truncated {
                what,
                needed: n,
                left: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, FrameError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, FrameError> {
        let b = self.take(8, what)?;
        let mut bytes = [0; 8];
        bytes.copy_from_slice(b);
        Ok(u64::from_le_bytes(bytes))
    }

    /// A string with a `u16` length; [`ABSENT`] is `None`.
    fn short_str(
        &mut self,
        index: usize,
        field: &'static str,
    ) -> Result<Option<&'a str>, FrameError> {
        let len = self.u16(field)?;
        if len == ABSENT {
            return Ok(None);
        }
        let bytes = self.take(len as usize, field)?;
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| FrameError::FieldNotUtf8 { index, field })
    }

    fn sized(&mut self, what: &'static str) -> Result<&'a [u8], FrameError> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }

    fn finish(self) -> Result<(), FrameError> {
        match self.bytes.len() {
            0 => Ok(()),
            bytes => Err(FrameError::TrailingBytes { bytes }),
        }
    }
}

/// A decoded request frame (without its length prefix), borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub op: Op,
    pub id: u32,
    pub queue: &'a str,
    pub payload: &'a [u8],
}

/// The op and id of a request, readable before the rest is checked, so that even a malformed
/// request is answered under its id. `None` if the frame is shorter than that.
pub fn request_id(frame: &[u8]) -> Option<u32> {
    let id = frame.get(1..5)?;
    Some(u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
}

/// Decodes one request frame (the bytes after its length prefix).
pub fn decode_request(frame: &[u8]) -> Result<Request<'_>, FrameError> {
    let mut reader = Reader { bytes: frame };
    let op_byte = reader.u8("the op")?;
    let id = reader.u32("the request id")?;
    let op = Op::from_byte(op_byte).ok_or(FrameError::UnknownOp(op_byte))?;
    let queue_len = reader.u16("the queue name length")? as usize;
    let queue = std::str::from_utf8(reader.take(queue_len, "the queue name")?)
        .map_err(|_| FrameError::QueueNotUtf8)?;
    Ok(Request {
        op,
        id,
        queue,
        payload: reader.bytes,
    })
}

/// Starts a frame in `out`: reserves its length prefix. [`end_frame`] fills it in.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; LENGTH_BYTES]);
    start
}

/// Writes the length of the frame begun at `start`.
///
/// # Panics
/// If the frame is longer than `u32::MAX` bytes; callers bound frames far below that.
pub fn end_frame(out: &mut [u8], start: usize) {
    let len = u32::try_from(out.len() - start - LENGTH_BYTES).expect("frame shorter than 4 GiB");
    out[start..start + LENGTH_BYTES].copy_from_slice(&len.to_le_bytes());
}

/// Writes a request's head; the payload follows, then [`end_frame`].
///
/// # Panics
/// If `queue` is longer than `u16::MAX` bytes (queue names have at most 80 characters).
pub fn request_head(out: &mut Vec<u8>, op: Op, id: u32, queue: &str) {
    out.push(op as u8);
    out.extend_from_slice(&id.to_le_bytes());
    let queue_len = u16::try_from(queue.len()).expect("queue name shorter than 64 KiB");
    out.extend_from_slice(&queue_len.to_le_bytes());
    out.extend_from_slice(queue.as_bytes());
}

/// Writes a response's head; the payload follows, then [`end_frame`].
pub fn response_head(out: &mut Vec<u8>, status: Status, id: u32) {
    out.push(status as u8);
    out.extend_from_slice(&id.to_le_bytes());
}

/// A decoded response frame, borrowing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: Status,
    pub id: u32,
    pub payload: &'a [u8],
}

/// Decodes one response frame (the bytes after its length prefix).
pub fn decode_response(frame: &[u8]) -> Result<Response<'_>, FrameError> {
    let mut reader = Reader { bytes: frame };
    let status = match reader.u8("the status")? {
        0 => Status::Ok,
        1 => Status::Error,
        other => return Err(FrameError::UnknownStatus(other)),
    };
    let id = reader.u32("the request id")?;
    Ok(Response {
        status,
        id,
        payload: reader.bytes,
    })
}

/// Writes a `u32` count, e.g. the number of messages of a send or receive payload.
pub fn put_count(out: &mut Vec<u8>, count: usize) {
    let count = u32::try_from(count).expect("fewer than 4 billion items");
    out.extend_from_slice(&count.to_le_bytes());
}

/// Writes `bytes` with its `u32` length.
pub fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) {
    put_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Writes one message of a send payload: its body and its meta (empty for a plain message).
pub fn put_send_message(out: &mut Vec<u8>, body: &str, meta: &[u8]) {
    put_sized(out, body.as_bytes());
    put_sized(out, meta);
}

/// One message of a send payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendItem<'a> {
    pub body: &'a str,
    /// JSON [`SendMeta`], or empty.
    pub meta: &'a [u8],
}

/// One message of a receive answer: everything of a native `ReceivedMessage`, borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedItem<'a> {
    pub id: &'a str,
    pub receipt: &'a str,
    pub seq: u64,
    pub receive_count: u32,
    pub sent_at: u64,
    pub first_received_at: u64,
    pub group_id: Option<&'a str>,
    pub dedup_id: Option<&'a str>,
    /// The message attributes as the native API writes them (a JSON object), or empty when
    /// the message has none.
    pub attributes: &'a [u8],
    pub body: &'a str,
}

/// Each item takes at least two length prefixes, so a count is plausible only if the payload
/// has room for that many; this keeps a forged count from reserving memory.
fn checked_count(reader: &mut Reader<'_>) -> Result<usize, FrameError> {
    let count = reader.u32("the message count")?;
    if (count as usize).saturating_mul(2 * 4) > reader.bytes.len() {
        return Err(FrameError::CountTooLarge { count });
    }
    Ok(count as usize)
}

/// Decodes a send payload.
pub fn decode_send(payload: &[u8]) -> Result<Vec<SendItem<'_>>, FrameError> {
    let mut reader = Reader { bytes: payload };
    let count = checked_count(&mut reader)?;
    let mut items = Vec::with_capacity(count);
    for index in 0..count {
        let body = reader.sized("a message body")?;
        let body = std::str::from_utf8(body).map_err(|_| FrameError::BodyNotUtf8 { index })?;
        let meta = reader.sized("a message meta")?;
        items.push(SendItem { body, meta });
    }
    reader.finish()?;
    Ok(items)
}

fn put_short_str(
    out: &mut Vec<u8>,
    index: usize,
    field: &'static str,
    value: Option<&str>,
) -> Result<(), FrameError> {
    match value {
        None => out.extend_from_slice(&ABSENT.to_le_bytes()),
        Some(value) => {
            let len = u16::try_from(value.len())
                .ok()
                .filter(|len| *len != ABSENT)
                .ok_or(FrameError::FieldTooLong { index, field })?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(value.as_bytes());
        }
    }
    Ok(())
}

/// Writes message `index` of a receive answer: `id` and `receipt` (`u16` length each),
/// `seq` (`u64`), `receive_count` (`u32`), `sent_at` and `first_received_at` (`u64`),
/// `group_id` and `dedup_id` (`u16` length, `0xFFFF` when absent), the attributes (`u32`
/// length, JSON or empty), the body (`u32` length).
pub fn put_received(
    out: &mut Vec<u8>,
    index: usize,
    item: &ReceivedItem<'_>,
) -> Result<(), FrameError> {
    put_short_str(out, index, "id", Some(item.id))?;
    put_short_str(out, index, "receipt", Some(item.receipt))?;
    out.extend_from_slice(&item.seq.to_le_bytes());
    out.extend_from_slice(&item.receive_count.to_le_bytes());
    out.extend_from_slice(&item.sent_at.to_le_bytes());
    out.extend_from_slice(&item.first_received_at.to_le_bytes());
    put_short_str(out, index, "group_id", item.group_id)?;
    put_short_str(out, index, "dedup_id", item.dedup_id)?;
    put_sized(out, item.attributes);
    put_sized(out, item.body.as_bytes());
    Ok(())
}

/// Decodes a receive answer.
pub fn decode_received(payload: &[u8]) -> Result<Vec<ReceivedItem<'_>>, FrameError> {
    let mut reader = Reader { bytes: payload };
    let count = checked_count(&mut reader)?;
    let mut items = Vec::with_capacity(count);
    for index in 0..count {
        let id = reader.short_str(index, "id")?.unwrap_or_default();
        let receipt = reader.short_str(index, "receipt")?.unwrap_or_default();
        let seq = reader.u64("a message seq")?;
        let receive_count = reader.u32("a receive count")?;
        let sent_at = reader.u64("a sent_at")?;
        let first_received_at = reader.u64("a first_received_at")?;
        let group_id = reader.short_str(index, "group_id")?;
        let dedup_id = reader.short_str(index, "dedup_id")?;
        let attributes = reader.sized("message attributes")?;
        let body = reader.sized("a message body")?;
        let body = std::str::from_utf8(body).map_err(|_| FrameError::BodyNotUtf8 { index })?;
        items.push(ReceivedItem {
            id,
            receipt,
            seq,
            receive_count,
            sent_at,
            first_received_at,
            group_id,
            dedup_id,
            attributes,
            body,
        });
    }
    reader.finish()?;
    Ok(items)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn request(op: Op, id: u32, queue: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_frame(&mut out);
        request_head(&mut out, op, id, queue);
        out.extend_from_slice(payload);
        end_frame(&mut out, start);
        out
    }

    #[test]
    fn request_round_trips_with_its_length_prefix() {
        let frame = request(Op::Ack, 7, "orders", b"{\"receipts\":[]}");
        let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - LENGTH_BYTES);
        let decoded = decode_request(&frame[LENGTH_BYTES..]).unwrap();
        assert_eq!(
            decoded,
            Request {
                op: Op::Ack,
                id: 7,
                queue: "orders",
                payload: b"{\"receipts\":[]}"
            }
        );
        assert_eq!(request_id(&frame[LENGTH_BYTES..]), Some(7));
    }

    #[test]
    fn malformed_requests_say_what_is_wrong() {
        assert_eq!(
            decode_request(&[9, 1, 0, 0, 0, 0, 0]),
            Err(FrameError::UnknownOp(9))
        );
        assert_eq!(
            decode_request(&[1, 1, 0]),
            Err(FrameError::Truncated {
                what: "the request id",
                needed: 4,
                left: 2
            })
        );
        assert_eq!(
            decode_request(&[1, 1, 0, 0, 0, 5, 0, b'a']),
            Err(FrameError::Truncated {
                what: "the queue name",
                needed: 5,
                left: 1
            })
        );
        assert_eq!(
            decode_request(&[1, 1, 0, 0, 0, 1, 0, 0xff]),
            Err(FrameError::QueueNotUtf8)
        );
        assert_eq!(request_id(&[1, 2]), None);
    }

    #[test]
    fn send_payload_round_trips_bodies_and_metas() {
        let mut payload = Vec::new();
        put_count(&mut payload, 3);
        put_send_message(&mut payload, "plain", b"");
        put_send_message(&mut payload, "with \"quotes\" and ü", b"{\"delay_ms\":5}");
        put_send_message(&mut payload, "", b"");
        let items = decode_send(&payload).unwrap();
        assert_eq!(
            items,
            vec![
                SendItem {
                    body: "plain",
                    meta: b""
                },
                SendItem {
                    body: "with \"quotes\" and ü",
                    meta: b"{\"delay_ms\":5}"
                },
                SendItem {
                    body: "",
                    meta: b""
                },
            ]
        );
    }

    #[test]
    fn send_payload_errors_name_the_message() {
        let mut payload = Vec::new();
        put_count(&mut payload, 2);
        put_send_message(&mut payload, "ok", b"");
        put_sized(&mut payload, &[0xc3, 0x28]);
        put_sized(&mut payload, b"");
        assert_eq!(
            decode_send(&payload),
            Err(FrameError::BodyNotUtf8 { index: 1 })
        );

        let mut forged = Vec::new();
        put_count(&mut forged, u32::MAX as usize);
        assert_eq!(
            decode_send(&forged),
            Err(FrameError::CountTooLarge { count: u32::MAX })
        );

        let mut trailing = Vec::new();
        put_count(&mut trailing, 1);
        put_send_message(&mut trailing, "x", b"");
        trailing.push(0);
        assert_eq!(
            decode_send(&trailing),
            Err(FrameError::TrailingBytes { bytes: 1 })
        );
    }

    #[test]
    fn receive_answer_round_trips() {
        let first = ReceivedItem {
            id: "a",
            receipt: "r-1",
            seq: 1,
            receive_count: 2,
            sent_at: 1_700_000_000_000,
            first_received_at: 1_700_000_000_005,
            group_id: Some("g"),
            dedup_id: None,
            attributes: b"{\"kind\":\"gift\"}",
            body: "first",
        };
        let second = ReceivedItem {
            id: "b",
            receipt: "",
            seq: u64::MAX,
            receive_count: 1,
            sent_at: 0,
            first_received_at: 0,
            group_id: None,
            dedup_id: Some(""),
            attributes: b"",
            body: "second\n",
        };
        let mut out = Vec::new();
        let start = begin_frame(&mut out);
        response_head(&mut out, Status::Ok, 42);
        put_count(&mut out, 2);
        put_received(&mut out, 0, &first).unwrap();
        put_received(&mut out, 1, &second).unwrap();
        end_frame(&mut out, start);
        let response = decode_response(&out[LENGTH_BYTES..]).unwrap();
        assert_eq!(response.status, Status::Ok);
        assert_eq!(response.id, 42);
        assert_eq!(
            decode_received(response.payload).unwrap(),
            vec![first, second]
        );
        assert_eq!(
            decode_response(&[3, 0, 0, 0, 0]),
            Err(FrameError::UnknownStatus(3))
        );
        let long = "x".repeat(70_000);
        let too_long = ReceivedItem {
            group_id: Some(&long),
            ..decode_received(response.payload).unwrap()[0].clone()
        };
        assert_eq!(
            put_received(&mut Vec::new(), 3, &too_long),
            Err(FrameError::FieldTooLong {
                index: 3,
                field: "group_id"
            })
        );
    }

    #[test]
    fn send_meta_refuses_unknown_fields_and_knows_plain_messages() {
        assert!(serde_json::from_str::<SendMeta>("{\"delay\":5}").is_err());
        assert!(SendMeta::default().is_empty());
        let meta: SendMeta = serde_json::from_str("{\"group_id\":\"g\"}").unwrap();
        assert!(!meta.is_empty());
    }
}
