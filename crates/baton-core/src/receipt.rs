//! Receipts: the token a receive hands out for each lease, its check, and its text form.
//!
//! A receipt names a message (`seq`) and one lease of it (`lease`), and carries a tag: a
//! SipHash-2-4 of the pair keyed by the queue incarnation's epoch, which is never shown. Only
//! the incarnation that minted a receipt finds its tag right, so a receipt of another queue, of
//! a deleted-and-recreated one, or with any bit changed is told apart from one that was issued
//! (the SQS API deletes by any receipt ever issued for a message, so "issued for this message"
//! must be exact: a damaged receipt must never name another message).
//!
//! The text is `B` followed by the URL-safe base64 (no padding) of tag, seq and lease (8 bytes
//! each, big-endian): 33 characters of `[A-Za-z0-9_-]`, safe in URLs and shells, and never
//! starting with `-` (the aws CLI would take such a value for an option). The first form,
//! 32 characters of the same base64 over epoch, seq and lease, is still read.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::message::Seq;

/// Opaque token a consumer presents to `ack`, `nack` or change the visibility of one lease.
/// Only `Queue::receive` mints them (and replay rebuilds the ones it logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReceiptHandle {
    pub(crate) tag: u64,
    pub(crate) seq: Seq,
    pub(crate) lease: u64,
}

/// Starts every receipt of the current text form.
const PREFIX: char = 'B';
const ENCODED_BYTES: usize = 24;
/// Characters of the base64 of `ENCODED_BYTES` (no padding).
const ENCODED_TEXT_CHARS: usize = 32;
/// Characters of the first text form (the base64 of 24 bytes).
const FIRST_FORM_CHARS: usize = 32;
/// The tag's second key word: receipts are SipHash's only use here, but a fixed word keeps
/// the tag of a receipt apart from any other digest keyed by an epoch.
const TAG_KEY: u64 = u64::from_be_bytes(*b"baton-rc");

impl ReceiptHandle {
    /// The receipt of lease `lease` of message `seq`, in the incarnation with `epoch`.
    pub(crate) fn mint(epoch: u64, seq: Seq, lease: u64) -> Self {
        ReceiptHandle {
            tag: tag(epoch, seq, lease),
            seq,
            lease,
        }
    }

    /// Whether the incarnation with `epoch` minted this receipt (or one with the same parts).
    pub(crate) fn is_from(&self, epoch: u64) -> bool {
        self.tag == tag(epoch, self.seq, self.lease)
    }

    /// The message and lease this receipt names, for a durable engine's log.
    pub fn parts(&self) -> (Seq, u64) {
        (self.seq, self.lease)
    }

    /// Rebuilds a receipt from its logged parts, to replay an ack, nack or visibility change.
    /// Outside replay, receipts come from `Queue::receive` only.
    pub fn from_parts(epoch: u64, seq: Seq, lease: u64) -> Self {
        ReceiptHandle::mint(epoch, seq, lease)
    }

    /// Parses the text form (either form); `None` when it is not a receipt at all.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(body) = text.strip_prefix(PREFIX) {
            let [tag, seq, lease] = decode_words(body)?;
            return Some(ReceiptHandle { tag, seq, lease });
        }
        if text.len() == FIRST_FORM_CHARS {
            let [epoch, seq, lease] = decode_words(text)?;
            return Some(ReceiptHandle::mint(epoch, seq, lease));
        }
        None
    }
}

fn decode_words(text: &str) -> Option<[u64; 3]> {
    // Into a stack buffer (a receipt is parsed per ack): one byte of room, so a longer text
    // fails instead of being cut.
    let mut buf = [0u8; ENCODED_BYTES + 1];
    let n = URL_SAFE_NO_PAD.decode_slice(text, &mut buf).ok()?;
    if n != ENCODED_BYTES {
        return None;
    }
    let bytes = &buf[..n];
    let word = |i: usize| -> Option<u64> {
        let chunk: [u8; 8] = bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?;
        Some(u64::from_be_bytes(chunk))
    };
    Some([word(0)?, word(1)?, word(2)?])
}

impl fmt::Display for ReceiptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; ENCODED_BYTES];
        bytes[..8].copy_from_slice(&self.tag.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.seq.to_be_bytes());
        bytes[16..].copy_from_slice(&self.lease.to_be_bytes());
        // Encoded on the stack: a receipt is formatted per delivery.
        let mut text = [0u8; 1 + ENCODED_TEXT_CHARS];
        text[0] = PREFIX as u8;
        let n = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut text[1..])
            .map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&text[..1 + n]).map_err(|_| fmt::Error)?)
    }
}

fn tag(epoch: u64, seq: Seq, lease: u64) -> u64 {
    let mut message = [0u8; 16];
    message[..8].copy_from_slice(&seq.to_le_bytes());
    message[8..].copy_from_slice(&lease.to_le_bytes());
    siphash24(epoch, TAG_KEY, &message)
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed digest made for short inputs, a few
/// nanoseconds for a receipt's 16 bytes.
fn siphash24(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let chunks = data.chunks_exact(8);
    let tail = chunks.remainder();
    let mut last = (data.len() as u64) << 56;
    for (i, byte) in tail.iter().enumerate() {
        last |= u64::from(*byte) << (8 * i);
    }
    let words = chunks
        .map(|chunk| {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            u64::from_le_bytes(word)
        })
        .chain(std::iter::once(last));
    for m in words {
        v[3] ^= m;
        sip_round(&mut v);
        sip_round(&mut v);
        v[0] ^= m;
    }
    v[2] ^= 0xff;
    for _ in 0..4 {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn siphash_matches_the_reference_vectors() {
        // The paper's key 00..0f; messages of 0 and of 15 bytes 00..0e (its appendix A).
        let (k0, k1) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        assert_eq!(siphash24(k0, k1, &[]), 0x726f_db47_dd0e_0e31);
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(k0, k1, &message), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn receipts_round_trip_and_reject_garbage() {
        let receipt = ReceiptHandle::mint(7, u64::MAX, 42);
        let text = receipt.to_string();
        assert_eq!(text.len(), 33);
        assert_eq!(ReceiptHandle::parse(&text), Some(receipt));
        assert!(receipt.is_from(7));
        assert!(!receipt.is_from(8));
        for garbage in [
            "not a receipt",
            "",
            "AAAA",
            "B",
            "BAAAA",
            &format!("-{}", &text[1..]),
        ] {
            assert_eq!(ReceiptHandle::parse(garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn the_first_text_form_is_still_read() {
        // 32 characters: epoch 7, seq 9, lease 3, as the first form wrote them.
        let mut bytes = [0u8; 24];
        bytes[..8].copy_from_slice(&7u64.to_be_bytes());
        bytes[8..16].copy_from_slice(&9u64.to_be_bytes());
        bytes[16..].copy_from_slice(&3u64.to_be_bytes());
        let old = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(old.len(), 32);
        assert_eq!(
            ReceiptHandle::parse(&old),
            Some(ReceiptHandle::mint(7, 9, 3))
        );
    }

    proptest! {
        /// Every receipt prints as 33 URL- and shell-safe characters starting with a letter,
        /// and reads back as itself.
        #[test]
        fn receipt_text_is_safe_and_round_trips(epoch: u64, seq: u64, lease: u64) {
            let receipt = ReceiptHandle::mint(epoch, seq, lease);
            let text = receipt.to_string();
            prop_assert_eq!(text.len(), 33);
            prop_assert!(text.starts_with(PREFIX));
            prop_assert!(text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            prop_assert_eq!(ReceiptHandle::parse(&text), Some(receipt));
        }

        /// A receipt with any one bit of its text's bytes flipped is not from its queue.
        #[test]
        fn a_damaged_receipt_is_not_from_its_queue(epoch: u64, seq: u64, lease: u64, bit in 0usize..192) {
            let receipt = ReceiptHandle::mint(epoch, seq, lease);
            let mut words = [receipt.tag, receipt.seq, receipt.lease];
            words[bit / 64] ^= 1 << (bit % 64);
            let damaged = ReceiptHandle { tag: words[0], seq: words[1], lease: words[2] };
            prop_assert!(!damaged.is_from(epoch));
        }
    }
}
