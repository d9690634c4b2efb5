//! Encryption at rest: frames sealed with AES-256-GCM under keys read from a key file.
//!
//! A sealed frame is an ordinary frame (same length prefix and crc32c, so torn tails and
//! corruption are found exactly as before) whose kind has [`SEALED_BIT`] set and whose payload
//! is `[key id u32 LE][nonce 12 bytes][ciphertext][tag 16 bytes]`. The additional data is the
//! record's own kind, so a ciphertext cannot be replayed as another record type.
//!
//! # Key file
//! One key per line, `<id> <64 hex digits>` (id 1..=4294967295); blank lines and `#` comments
//! are ignored. The last key encrypts; every key decrypts. Rotating is appending a key: frames
//! written from then on use it, older frames stay readable, and a key may be removed once
//! `baton storage verify` counts no frame under it (checkpoints rewrite live state under the
//! new key, and the segments they cover are deleted).
//!
//! # Nonces
//! A random 96-bit base per [`Keyring`] plus a 64-bit counter: unique per keyring without a
//! system call per frame, and two keyrings (two processes) collide only if their random bases
//! land within 2^64 of each other, which is negligible.
//!
//! Unsealed frames stay readable with or without a key file, so encryption can be switched on
//! for an existing data directory; a sealed frame without its key is an error, never skipped.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::frame::{Frame, FRAME_OVERHEAD_BYTES, PAYLOAD_BYTES_MAX};

/// Set in a frame's kind when its payload is sealed; record kinds stay below it.
pub const SEALED_BIT: u8 = 0x80;
const KEY_ID_BYTES: usize = 4;
const TAG_BYTES: usize = 16;
/// What sealing adds to a payload: key id, nonce and tag.
pub const SEAL_OVERHEAD_BYTES: usize = KEY_ID_BYTES + NONCE_LEN + TAG_BYTES;
pub const KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the encryption key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("encryption key file {path}, line {line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("encryption key file {path} holds no key (lines of `<id> <64 hex digits>`; `baton storage keygen --key-file {path}` adds one)")]
    Empty { path: String },
}

/// Why a sealed frame could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the frame is encrypted under key {key_id}, and no encryption key file is configured (`encryption_key_file`)")]
    NoKeyFile { key_id: u32 },
    #[error("the frame is encrypted under key {key_id}, which the key file does not hold (it holds {held:?})")]
    UnknownKey { key_id: u32, held: Vec<u32> },
    #[error("the frame does not decrypt under key {key_id}: the key file holds another key with that id, or the frame was altered")]
    Undecryptable { key_id: u32 },
    #[error("the encrypted frame is {len} bytes, shorter than its key id, nonce and tag")]
    Malformed { len: usize },
}

impl SealError {
    pub fn key_id(&self) -> Option<u32> {
        match self {
            SealError::NoKeyFile { key_id }
            | SealError::UnknownKey { key_id, .. }
            | SealError::Undecryptable { key_id } => Some(*key_id),
            SealError::Malformed { .. } => None,
        }
    }
}

/// The keys of a key file: the newest seals, all open.
pub struct Keyring {
    keys: BTreeMap<u32, LessSafeKey>,
    active: u32,
    nonce_base: [u8; NONCE_LEN],
    nonces_used: AtomicU64,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Reads a key file (see the module docs for its format).
    pub fn load(path: &Path) -> Result<Keyring, KeyFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| KeyFileError::Unreadable {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Keyring::parse(&text, &shown)
    }

    /// Parses a key file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Keyring, KeyFileError> {
        let keys = parse_lines(text, path)?;
        Keyring::from_keys(&keys).ok_or_else(|| KeyFileError::Empty {
            path: path.to_string(),
        })
    }

    /// A keyring of `(id, key)` pairs, the last one active; `None` when empty.
    pub fn from_keys(keys: &[(u32, [u8; KEY_BYTES])]) -> Option<Keyring> {
        let (active, _) = *keys.last()?;
        let mut nonce_base = [0u8; NONCE_LEN];
        // Without randomness nonces could repeat across restarts: that must stop the start.
        #[allow(clippy::expect_used)]
        SystemRandom::new()
            .fill(&mut nonce_base)
            .expect("the system's random number generator failed");
        let keys = keys
            .iter()
            .map(|(id, bytes)| (*id, aead_key(bytes)))
            .collect();
        Some(Keyring {
            keys,
            active,
            nonce_base,
            nonces_used: AtomicU64::new(0),
        })
    }

    /// The key that seals new frames.
    pub fn active_id(&self) -> u32 {
        self.active
    }

    pub fn ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    fn next_nonce(&self) -> [u8; NONCE_LEN] {
        let n = self.nonces_used.fetch_add(1, Ordering::Relaxed);
        let mut nonce = self.nonce_base;
        let (_, low) = nonce.split_at_mut(NONCE_LEN - 8);
        let mut counter = [0u8; 8];
        counter.copy_from_slice(low);
        low.copy_from_slice(&u64::from_be_bytes(counter).wrapping_add(n).to_be_bytes());
        nonce
    }

    /// Appends `payload` as one sealed frame of record kind `kind` to `out`.
    pub fn encode(&self, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
        // 0x7F sealed would read as a checkpoint's end frame (0xFF).
        assert!(kind < 0x7F, "record kinds stay below 0x7F");
        let sealed_len = payload.len() + SEAL_OVERHEAD_BYTES;
        assert!(
            sealed_len as u64 <= u64::from(PAYLOAD_BYTES_MAX),
            "payload over the frame limit"
        );
        let start = out.len();
        let nonce = self.next_nonce();
        out.reserve(FRAME_OVERHEAD_BYTES + sealed_len);
        out.extend_from_slice(&(sealed_len as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(kind | SEALED_BIT);
        out.extend_from_slice(&self.active.to_le_bytes());
        out.extend_from_slice(&nonce);
        let text_start = out.len();
        out.extend_from_slice(payload);
        let key = self.keys.get(&self.active);
        let tag = key.and_then(|key| {
            let text = out.get_mut(text_start..)?;
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([kind]),
                text,
            )
            .ok()
        });
        // Sealing fails only for inputs far over the frame limit, which was checked above.
        #[allow(clippy::expect_used)]
        out.extend_from_slice(tag.expect("AES-GCM sealing failed").as_ref());
        let crc_input = out.get(start + 8..).unwrap_or_default();
        let crc = crc32c::crc32c(crc_input);
        if let Some(slot) = out.get_mut(start + 4..start + 8) {
            slot.copy_from_slice(&crc.to_le_bytes());
        }
    }

    fn open(&self, kind: u8, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (key_id, nonce, text) = split_sealed(sealed)?;
        let key = self
            .keys
            .get(&key_id)
            .ok_or_else(|| SealError::UnknownKey {
                key_id,
                held: self.ids(),
            })?;
        let mut text = text.to_vec();
        let opened = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([kind]),
                &mut text,
            )
            .map_err(|_| SealError::Undecryptable { key_id })?
            .len();
        text.truncate(opened);
        Ok(text)
    }
}

fn aead_key(bytes: &[u8; KEY_BYTES]) -> LessSafeKey {
    // Any 32 bytes are an AES-256 key.
    #[allow(clippy::expect_used)]
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("a 32-byte AES-256 key"))
}

fn split_sealed(sealed: &[u8]) -> Result<(u32, [u8; NONCE_LEN], &[u8]), SealError> {
    let malformed = SealError::Malformed { len: sealed.len() };
    if sealed.len() < SEAL_OVERHEAD_BYTES {
        return Err(malformed);
    }
    let (id, rest) = sealed.split_at(KEY_ID_BYTES);
    let (nonce, text) = rest.split_at(NONCE_LEN);
    let id = u32::from_le_bytes(id.try_into().map_err(|_| malformed.clone())?);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| malformed)?;
    Ok((id, nonce, text))
}

/// The key id a sealed frame names, `None` for a plain frame or a malformed one.
pub fn sealed_key_id(frame: &Frame<'_>) -> Option<u32> {
    if frame.kind & SEALED_BIT == 0 {
        return None;
    }
    split_sealed(frame.payload).ok().map(|(id, _, _)| id)
}

/// Appends a frame, sealed when there are keys.
pub fn encode_frame(keys: Option<&Keyring>, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    match keys {
        Some(keys) => keys.encode(kind, payload, out),
        None => crate::frame::encode(kind, payload, out),
    }
}

/// Bytes one frame of `payload_len` occupies when written with `keys`.
pub fn frame_bytes(keys: Option<&Keyring>, payload_len: usize) -> usize {
    FRAME_OVERHEAD_BYTES
        + payload_len
        + if keys.is_some() {
            SEAL_OVERHEAD_BYTES
        } else {
            0
        }
}

/// A frame's record kind and plaintext payload: borrowed when it was not sealed.
pub fn open_frame<'a>(
    keys: Option<&Keyring>,
    frame: &Frame<'a>,
) -> Result<(u8, Cow<'a, [u8]>), SealError> {
    if frame.kind & SEALED_BIT == 0 {
        return Ok((frame.kind, Cow::Borrowed(frame.payload)));
    }
    let kind = frame.kind & !SEALED_BIT;
    match keys {
        Some(keys) => Ok((kind, Cow::Owned(keys.open(kind, frame.payload)?))),
        None => {
            let (key_id, _, _) = split_sealed(frame.payload)?;
            Err(SealError::NoKeyFile { key_id })
        }
    }
}

/// A frame `baton storage verify` could not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecryptable {
    pub path: PathBuf,
    pub offset_bytes: u64,
    pub error: SealError,
}

/// What the frames of a data directory's files are sealed with, and which cannot be opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealScan {
    pub files: u64,
    pub plain_frames: u64,
    /// Sealed frames per key id.
    pub sealed_frames: BTreeMap<u32, u64>,
    /// Frames that do not open with the keys given (the first [`UNDECRYPTABLE_LISTED`]).
    pub undecryptable: Vec<Undecryptable>,
    pub undecryptable_frames: u64,
}

/// How many undecryptable frames a scan lists (all are counted).
pub const UNDECRYPTABLE_LISTED: usize = 100;

impl SealScan {
    /// Scans the log segments and checkpoints directly in each of `dirs` (missing ones are
    /// skipped): every complete frame up to the first unreadable one, which recovery judges.
    pub fn of_dirs(
        fs: &dyn crate::FileSystem,
        dirs: &[PathBuf],
        keys: Option<&Keyring>,
    ) -> std::io::Result<SealScan> {
        let mut scan = SealScan::default();
        for dir in dirs {
            let names = match fs.list(dir) {
                Ok(names) => names,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for name in names {
                if name.ends_with(".seg") || name.ends_with(".ckpt") {
                    let path = dir.join(&name);
                    let bytes = fs.read(&path)?;
                    scan.file(&path, &bytes, keys);
                }
            }
        }
        Ok(scan)
    }

    fn file(&mut self, path: &Path, bytes: &[u8], keys: Option<&Keyring>) {
        self.files += 1;
        let mut offset = crate::frame::HEADER_BYTES;
        while let Ok(frame) = crate::frame::decode(bytes.get(offset..).unwrap_or_default()) {
            if frame.kind == crate::checkpoint::END_KIND {
                break;
            }
            match (frame.kind & SEALED_BIT != 0, open_frame(keys, &frame)) {
                (false, _) => self.plain_frames += 1,
                (true, Ok(_)) => {
                    let id = sealed_key_id(&frame).unwrap_or_default();
                    *self.sealed_frames.entry(id).or_default() += 1;
                }
                (true, Err(error)) => {
                    self.undecryptable_frames += 1;
                    if self.undecryptable.len() < UNDECRYPTABLE_LISTED {
                        self.undecryptable.push(Undecryptable {
                            path: path.to_path_buf(),
                            offset_bytes: offset as u64,
                            error,
                        });
                    }
                }
            }
            offset += frame.len_bytes;
        }
    }
}

fn parse_lines(text: &str, path: &str) -> Result<Vec<(u32, [u8; KEY_BYTES])>, KeyFileError> {
    let mut keys: Vec<(u32, [u8; KEY_BYTES])> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let invalid = |reason: String| KeyFileError::Invalid {
            path: path.to_string(),
            line: index + 1,
            reason,
        };
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(id), Some(hex_key), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(invalid(
                "expected `<id> <64 hex digits>` (the id, one space, the key)".to_string(),
            ));
        };
        let id: u32 =
            id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
                invalid(format!("key id {id:?} is not a number in 1..=4294967295"))
            })?;
        let mut key = [0u8; KEY_BYTES];
        hex::decode_to_slice(hex_key, &mut key).map_err(|_| {
            invalid(format!(
                "the key of id {id} is not 64 hex digits (32 bytes for AES-256)"
            ))
        })?;
        if keys.iter().any(|(other, _)| *other == id) {
            return Err(invalid(format!("key id {id} appears twice")));
        }
        keys.push((id, key));
    }
    Ok(keys)
}

/// A new key line for the key file at `existing` (its current text): the next id after the
/// highest one, and 32 random bytes.
pub fn new_key_line(existing: &str) -> Result<(u32, String), KeyFileError> {
    let keys = parse_lines(existing, "the key file")?;
    let id = keys
        .iter()
        .map(|(id, _)| *id)
        .max()
        .unwrap_or(0)
        .checked_add(1);
    let id = id.ok_or_else(|| KeyFileError::Invalid {
        path: "the key file".to_string(),
        line: 0,
        reason: "key ids are exhausted".to_string(),
    })?;
    let mut key = [0u8; KEY_BYTES];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyFileError::Unreadable {
            path: "the system's random number generator".to_string(),
            reason: "it failed".to_string(),
        })?;
    Ok((id, format!("{id} {}\n", hex::encode(key))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::frame::decode;

    fn ring_of(ids: &[u32]) -> Keyring {
        let keys: Vec<_> = ids.iter().map(|id| (*id, [*id as u8; KEY_BYTES])).collect();
        Keyring::from_keys(&keys).unwrap()
    }

    #[test]
    fn sealed_frames_round_trip_and_hide_the_payload() {
        let keys = ring_of(&[1]);
        let mut out = Vec::new();
        keys.encode(3, b"secret order 42", &mut out);
        assert_eq!(out.len(), frame_bytes(Some(&keys), 15));
        assert!(!out.windows(6).any(|w| w == b"secret"));
        let frame = decode(&out).unwrap();
        assert_eq!(frame.kind, 3 | SEALED_BIT);
        assert_eq!(sealed_key_id(&frame), Some(1));
        let (kind, payload) = open_frame(Some(&keys), &frame).unwrap();
        assert_eq!((kind, payload.as_ref()), (3, b"secret order 42".as_slice()));
    }

    #[test]
    fn plain_frames_open_with_and_without_keys() {
        let mut out = Vec::new();
        crate::frame::encode(2, b"plain", &mut out);
        let frame = decode(&out).unwrap();
        for keys in [None, Some(ring_of(&[1]))] {
            let (kind, payload) = open_frame(keys.as_ref(), &frame).unwrap();
            assert_eq!((kind, payload.as_ref()), (2, b"plain".as_slice()));
        }
    }

    #[test]
    fn nonces_differ_per_frame() {
        let keys = ring_of(&[1]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        keys.encode(1, b"same", &mut a);
        keys.encode(1, b"same", &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn rotation_keeps_old_frames_readable_and_seals_with_the_newest_key() {
        let mut old = Vec::new();
        ring_of(&[1]).encode(1, b"before", &mut old);
        let rotated = ring_of(&[1, 2]);
        let mut new = Vec::new();
        rotated.encode(1, b"after", &mut new);
        assert_eq!(sealed_key_id(&decode(&new).unwrap()), Some(2));
        let (_, before) = open_frame(Some(&rotated), &decode(&old).unwrap()).unwrap();
        assert_eq!(before.as_ref(), b"before");
    }

    #[test]
    fn a_missing_or_wrong_key_is_a_precise_error() {
        let mut out = Vec::new();
        ring_of(&[7]).encode(1, b"x", &mut out);
        let frame = decode(&out).unwrap();
        assert_eq!(
            open_frame(None, &frame).unwrap_err(),
            SealError::NoKeyFile { key_id: 7 }
        );
        assert_eq!(
            open_frame(Some(&ring_of(&[1, 2])), &frame).unwrap_err(),
            SealError::UnknownKey {
                key_id: 7,
                held: vec![1, 2]
            }
        );
        let other = Keyring::from_keys(&[(7, [9; KEY_BYTES])]).unwrap();
        assert_eq!(
            open_frame(Some(&other), &frame).unwrap_err(),
            SealError::Undecryptable { key_id: 7 }
        );
    }

    /// A change that also fixes the checksum (an attacker, not a torn write) is caught by the
    /// tag, wherever it is, the kind byte included.
    #[test]
    fn tampering_behind_a_valid_checksum_is_refused() {
        let keys = ring_of(&[1]);
        let mut out = Vec::new();
        keys.encode(1, b"pay 10 to alice", &mut out);
        for byte in 8..out.len() {
            let mut altered = out.clone();
            altered[byte] ^= 0x01;
            let crc = crc32c::crc32c(&altered[8..]);
            altered[4..8].copy_from_slice(&crc.to_le_bytes());
            let frame = decode(&altered).unwrap();
            assert!(
                open_frame(Some(&keys), &frame).is_err(),
                "a flip at {byte} opened"
            );
        }
    }

    #[test]
    fn key_files_parse_with_precise_errors() {
        let text = "# keys\n1 ".to_string() + &"ab".repeat(32) + "\n\n2 " + &"cd".repeat(32);
        let keys = Keyring::parse(&text, "k").unwrap();
        assert_eq!((keys.ids(), keys.active_id()), (vec![1, 2], 2));
        let bad = |text: &str| Keyring::parse(text, "k").unwrap_err().to_string();
        assert!(bad("").contains("holds no key"), "{}", bad(""));
        assert!(bad("1 abcd").contains("line 1"), "{}", bad("1 abcd"));
        assert!(bad("0 ab").contains("1..=4294967295"));
        assert!(bad("1 a b").contains("expected `<id> <64 hex digits>`"));
        let twice = format!("1 {}\n1 {}", "00".repeat(32), "11".repeat(32));
        assert!(bad(&twice).contains("line 2: key id 1 appears twice"));
    }

    #[test]
    fn new_key_lines_take_the_next_id() {
        let (id, line) = new_key_line("").unwrap();
        assert_eq!(id, 1);
        let (id, second) = new_key_line(&format!("{line}5 {}\n", "00".repeat(32))).unwrap();
        assert_eq!(id, 6);
        assert!(Keyring::parse(&(line + &second), "k").is_ok());
    }
}
