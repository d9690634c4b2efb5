//! Record framing shared by WAL segments and checkpoints.
//!
//! A file starts with a header `[magic 8 bytes][format version u32 LE]`, then frames:
//! `[payload length u32 LE][crc32c u32 LE of kind and payload][kind u8][payload]`.
//! The checksum covers the kind byte, so a flipped kind is caught too.

pub const HEADER_BYTES: usize = 12;
pub const FRAME_OVERHEAD_BYTES: usize = 9;
/// Largest payload a frame may carry: a full send batch fits, garbage lengths do not.
pub const PAYLOAD_BYTES_MAX: u32 = 256 * 1024 * 1024;
pub const FORMAT_VERSION: u32 = 1;

/// What went wrong at one position of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The file ends inside this frame: a write that did not finish.
    Truncated,
    /// The frame is complete but its length is impossible or its checksum is wrong.
    Corrupt,
}

pub fn header(magic: &[u8; 8]) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[..8].copy_from_slice(magic);
    out[8..].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out
}

/// Checks the header; returns the format version.
pub fn check_header(bytes: &[u8], magic: &[u8; 8]) -> Result<u32, FrameError> {
    let Some(head) = bytes.get(..HEADER_BYTES) else {
        return Err(FrameError::Truncated);
    };
    if head.get(..8) != Some(magic.as_slice()) {
        return Err(FrameError::Corrupt);
    }
    let version = u32::from_le_bytes(
        head.get(8..12)
            .and_then(|v| v.try_into().ok())
            .ok_or(FrameError::Corrupt)?,
    );
    if version == 0 || version > FORMAT_VERSION {
        return Err(FrameError::Corrupt);
    }
    Ok(version)
}

/// Appends one frame to `out`.
pub fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() as u64 <= u64::from(PAYLOAD_BYTES_MAX),
        "payload over the frame limit"
    );
    let crc = crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// A decoded frame borrowing from the file's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: u8,
    pub payload: &'a [u8],
    /// Bytes the frame occupies, overhead included.
    pub len_bytes: usize,
}

/// Decodes the frame that starts at `bytes[0]`.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let Some(head) = bytes.get(..FRAME_OVERHEAD_BYTES) else {
        return Err(FrameError::Truncated);
    };
    let word = |i: usize| -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(head.get(i..i + 4).unwrap_or(&[0; 4]));
        u32::from_le_bytes(b)
    };
    let len = word(0);
    let crc = word(4);
    let kind = head.get(8).copied().unwrap_or(0);
    if len > PAYLOAD_BYTES_MAX {
        return Err(FrameError::Corrupt);
    }
    let end = FRAME_OVERHEAD_BYTES + len as usize;
    let Some(payload) = bytes.get(FRAME_OVERHEAD_BYTES..end) else {
        return Err(FrameError::Truncated);
    };
    if crc32c::crc32c_append(crc32c::crc32c(&[kind]), payload) != crc {
        return Err(FrameError::Corrupt);
    }
    Ok(Frame {
        kind,
        payload,
        len_bytes: end,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut out = Vec::new();
        encode(3, b"hello", &mut out);
        encode(4, b"", &mut out);
        let first = decode(&out).unwrap();
        assert_eq!((first.kind, first.payload), (3, b"hello".as_slice()));
        let second = decode(&out[first.len_bytes..]).unwrap();
        assert_eq!(
            (second.kind, second.payload, second.len_bytes),
            (4, b"".as_slice(), 9)
        );
    }

    #[test]
    fn every_truncation_is_detected_as_truncated() {
        let mut out = Vec::new();
        encode(1, b"some payload", &mut out);
        for cut in 0..out.len() {
            assert_eq!(
                decode(&out[..cut]),
                Err(FrameError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let mut out = Vec::new();
        encode(1, b"some payload", &mut out);
        for byte in 0..out.len() {
            for bit in 0..8 {
                let mut flipped = out.clone();
                flipped[byte] ^= 1 << bit;
                assert!(
                    decode(&flipped).is_err(),
                    "flip at {byte}:{bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn headers_are_checked() {
        let good = header(b"BATONWAL");
        assert_eq!(check_header(&good, b"BATONWAL"), Ok(FORMAT_VERSION));
        assert_eq!(
            check_header(&good[..5], b"BATONWAL"),
            Err(FrameError::Truncated)
        );
        assert_eq!(check_header(&good, b"BATONCKP"), Err(FrameError::Corrupt));
        let mut future = good;
        future[8] = 99;
        assert_eq!(check_header(&future, b"BATONWAL"), Err(FrameError::Corrupt));
    }
}
