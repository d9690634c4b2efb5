//! The storage targets: WAL segments (`wal_replay`), checkpoint files (`checkpoint_load`) and
//! stream logs (`stream_log`), each written onto a `SimFs` and read back by the production
//! recovery code (`wal::replay`, `checkpoint::load_newest`), every record decoded as its frame
//! kind says.
//!
//! Random bytes almost never carry a valid crc32c, so an input is a small program that builds
//! the files: most steps append a frame with a correct checksum around bytes of the input
//! (which the record decoders then see), others append raw bytes (torn or damaged tails,
//! garbage) or start a new segment, contiguous or after a gap. The checks:
//! - recovery never panics; replayed LSNs are dense and end at `LogEnd::next_lsn`;
//! - `Verify` changes no file, and when it finds no gap `Recover` replays the same records and
//!   cuts the same bytes;
//! - the end of a successful `Recover` or `Repair` is one `Wal::open` accepts; a record
//!   written there is replayed by the next recovery, after the same records as before, and
//!   nothing is cut (what recovery leaves is a log, and new records are never lost);
//! - a checkpoint is used whole or not at all: a refused one hands out no frame, an accepted
//!   one hands out exactly the frames its end frame counts;
//! - every record that decodes re-encodes to bytes that decode to the same record.
//!
//! Shared with the owning crate's tests (`crates/baton-storage/tests/it/fuzz_corpus.rs`
//! includes this file), so it uses nothing but `baton-storage`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_storage::checkpoint::{self, CHECKPOINT_MAGIC};
use baton_storage::frame::{self, HEADER_BYTES};
use baton_storage::records::{self, CheckpointPart, QueueOp};
use baton_storage::wal::{self, LogEnd, ReplayMode, WalConfig, SEGMENT_MAGIC};
use baton_storage::{
    lock_records, schedule_records, stream_records, topic_records, FileSystem, SimFs, SyncPolicy,
    Wal,
};

/// Reads an input front to back; past its end every read is zero.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn u8(&mut self) -> u8 {
        let (first, rest) = self
            .bytes
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.bytes = rest;
        first
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    /// A length: one byte, or two when the step asks for a long one.
    fn len(&mut self, long: bool) -> usize {
        if long {
            usize::from(u16::from_le_bytes([self.u8(), self.u8()]))
        } else {
            usize::from(self.u8())
        }
    }
}

/// Decodes `payload` as the record type its frame kind names and checks the round trip.
/// Returns whether it decoded.
pub fn decode_record(kind: u8, payload: &[u8]) -> bool {
    use lock_records::{LockCheckpointPart, LockOp};
    use schedule_records::{ScheduleCheckpointPart, ScheduleOp};
    use stream_records::StreamOp;
    use topic_records::{TopicCheckpointPart, TopicOp};
    match kind {
        records::KIND_QUEUE_OP => round_trip::<QueueOp>(kind, payload),
        records::KIND_CHECKPOINT => round_trip::<CheckpointPart>(kind, payload),
        topic_records::KIND_TOPIC_OP => round_trip::<TopicOp>(kind, payload),
        topic_records::KIND_TOPIC_CHECKPOINT => round_trip::<TopicCheckpointPart>(kind, payload),
        lock_records::KIND_LOCK_OP => round_trip::<LockOp>(kind, payload),
        lock_records::KIND_LOCK_CHECKPOINT => round_trip::<LockCheckpointPart>(kind, payload),
        schedule_records::KIND_SCHEDULE_OP => round_trip::<ScheduleOp>(kind, payload),
        schedule_records::KIND_SCHEDULE_CHECKPOINT => {
            round_trip::<ScheduleCheckpointPart>(kind, payload)
        }
        stream_records::KIND_STREAM_OP => round_trip::<StreamOp>(kind, payload),
        _ => false,
    }
}

/// decode → encode → decode gives the same encoding (compared as bytes: records with `f64`s
/// may hold a NaN, which is not equal to itself).
fn round_trip<T>(kind: u8, payload: &[u8]) -> bool
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let Ok(value) = records::decode::<T>(kind, payload) else {
        return false;
    };
    let encoded = records::encode(&value);
    let again: T = match records::decode(kind, &encoded) {
        Ok(again) => again,
        Err(error) => panic!("kind {kind}: a re-encoded record does not decode: {error}"),
    };
    assert_eq!(
        records::encode(&again),
        encoded,
        "kind {kind}: the round trip changed the record"
    );
    true
}

fn dir() -> PathBuf {
    PathBuf::from("/data")
}

/// Writes `bytes` as the file at `path` and syncs it.
fn put(fs: &SimFs, path: &Path, bytes: &[u8]) {
    let mut file = fs.create(path).expect("SimFs creates files");
    file.append(bytes).expect("SimFs appends");
    file.sync().expect("SimFs syncs");
}

/// Every file (path and bytes) under `dir`, to compare before and after.
fn files(fs: &SimFs, dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut names = fs.list(dir).expect("SimFs lists");
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let contents = fs.contents(&dir.join(&name));
            (name, contents)
        })
        .collect()
}

/// Log segments built from an input: `(first_lsn, bytes)`.
fn build_segments(input: &mut Input<'_>, kind_default: Option<u8>) -> Vec<(u64, Vec<u8>)> {
    let mut segments: Vec<(u64, Vec<u8>)> = vec![(1, frame::header(SEGMENT_MAGIC).to_vec())];
    let mut n_frames = 0u64;
    let mut n_steps = 0;
    while !input.is_empty() && n_steps < 256 {
        n_steps += 1;
        let step = input.u8();
        let Some((first_lsn, bytes)) = segments.last_mut() else {
            break;
        };
        match step % 8 {
            // A valid frame (most steps): kind, length, payload.
            0..=4 => {
                let kind = match kind_default {
                    Some(kind) if step & 0x80 == 0 => kind,
                    _ => input.u8(),
                };
                let len = input.len(step & 0x40 != 0);
                frame::encode(kind, input.take(len), bytes);
                n_frames += 1;
            }
            // Raw bytes: a torn write, damage, zero-filled space.
            5 => {
                let len = input.len(step & 0x40 != 0);
                bytes.extend_from_slice(input.take(len));
            }
            // Cut the segment short or flip a bit in it (a torn tail, a bad sector).
            6 => {
                let at = usize::from(u16::from_le_bytes([input.u8(), input.u8()]));
                if step & 0x40 != 0 {
                    bytes.truncate(at);
                } else {
                    let n_bytes = bytes.len().max(1);
                    if let Some(byte) = bytes.get_mut(at % n_bytes) {
                        *byte ^= 1 << (step >> 5 & 7);
                    }
                }
            }
            // A new segment, contiguous or after a gap of a few records.
            _ => {
                let next = *first_lsn + n_frames + u64::from(input.u8() % 4 / 3);
                n_frames = 0;
                segments.push((next, frame::header(SEGMENT_MAGIC).to_vec()));
            }
        }
    }
    segments
}

/// The segments an input describes: with flag bit 3 the rest of the input is one segment file
/// verbatim (how the seed corpus holds segments the real writer wrote), otherwise a program
/// for [`build_segments`].
fn segments_of(flags: u8, input: &mut Input<'_>, kind_default: Option<u8>) -> Vec<(u64, Vec<u8>)> {
    if flags & RAW != 0 {
        return vec![(1, input.take(usize::MAX).to_vec())];
    }
    build_segments(input, kind_default)
}

/// The flag of an input that holds a file verbatim.
pub const RAW: u8 = 0x08;

/// One replay: the records handed out, or the error.
type Replayed = Result<(LogEnd, Vec<(u64, u8, Vec<u8>)>), wal::RecoveryError>;

fn replay(fs: &SimFs, from_lsn: u64, mode: ReplayMode, decode: bool) -> Replayed {
    let mut seen = Vec::new();
    let end = wal::replay(fs, &dir(), from_lsn, mode, |lsn, kind, payload| {
        if decode {
            decode_record(kind, payload);
        }
        seen.push((lsn, kind, payload.to_vec()));
        Ok(())
    })?;
    if let Some(window) = seen.windows(2).find(|w| w[0].0 + 1 != w[1].0) {
        panic!(
            "replayed LSNs are not dense: {} then {}",
            window[0].0, window[1].0
        );
    }
    if let (Some(first), Some(last)) = (seen.first(), seen.last()) {
        assert!(
            first.0 >= from_lsn,
            "record {} replayed from {from_lsn}",
            first.0
        );
        assert_eq!(
            end.next_lsn,
            last.0 + 1,
            "the log's end after its last record"
        );
    }
    // Only a report may say the log ends before where it starts (before a gap Verify found).
    assert!(
        end.next_lsn >= from_lsn || (mode == ReplayMode::Verify && end.gap.is_some()),
        "{mode:?}: the log ends at {} before where it starts, {from_lsn}: {end:?}",
        end.next_lsn
    );
    Ok((end, seen))
}

/// Writes `segments` onto a fresh disk.
fn disk(segments: &[(u64, Vec<u8>)]) -> SimFs {
    let fs = SimFs::new();
    for (first_lsn, bytes) in segments {
        put(&fs, &dir().join(wal::segment_name(*first_lsn)), bytes);
    }
    fs
}

/// Recovery of a log built by `input`, in every mode, with the cross-mode checks.
fn check_log(input: &[u8], kind_default: Option<u8>) -> Vec<(u64, u8, Vec<u8>)> {
    let mut input = Input { bytes: input };
    let flags = input.u8();
    let segments = segments_of(flags, &mut input, kind_default);
    let from_lsn = 1 + u64::from(flags >> 4);

    let verify_fs = disk(&segments);
    let before = files(&verify_fs, &dir());
    let verified = replay(&verify_fs, from_lsn, ReplayMode::Verify, true);
    assert_eq!(
        files(&verify_fs, &dir()),
        before,
        "Verify changed the files"
    );

    let mut recovered_records = Vec::new();
    for mode in [ReplayMode::Recover, ReplayMode::Repair] {
        let fs = disk(&segments);
        let (end, seen) = match replay(&fs, from_lsn, mode, false) {
            Ok(replayed) => replayed,
            // Only recovery refuses a log: a repair cuts it instead.
            Err(_) if mode == ReplayMode::Recover => continue,
            // ...except a whole frame sealed under a key not given (none is here): it is
            // never cut, not even by a repair (`RecoveryError::Sealed`).
            Err(wal::RecoveryError::Sealed { .. }) => continue,
            Err(error) => panic!("Repair failed: {error}"),
        };
        if mode == ReplayMode::Recover {
            assert!(
                verified.is_ok(),
                "Verify refused a log that Recover accepts"
            );
            if let Ok((verified_end, verified_seen)) = &verified {
                if verified_end.gap.is_none() {
                    assert_eq!(
                        &seen, verified_seen,
                        "Recover replayed other records than Verify"
                    );
                    assert_eq!(end.truncated_bytes, verified_end.truncated_bytes);
                    assert_eq!(end.next_lsn, verified_end.next_lsn);
                }
            }
            recovered_records.clone_from(&seen);
        }
        // What the engine does next: continue the log where recovery ended and write a
        // record. Recovering then replays the same records and the new one, and cuts nothing.
        let lsn = write_after(&fs, &end, mode);
        let again = replay(&fs, from_lsn, ReplayMode::Recover, false);
        let Ok((again_end, mut again_seen)) = again else {
            panic!(
                "{mode:?} left a log that does not recover: {:?}",
                again.err()
            );
        };
        assert_eq!(
            again_seen.pop(),
            Some((lsn, AFTER_KIND, AFTER_PAYLOAD.to_vec())),
            "the record written after {mode:?} (LSN {lsn}, log from {from_lsn}) is not replayed"
        );
        assert_eq!(
            again_seen, seen,
            "a second recovery after {mode:?} replayed other records"
        );
        assert_eq!(
            again_end.truncated_bytes, 0,
            "a second recovery after {mode:?} cut bytes"
        );
        assert_eq!(again_end.next_lsn, lsn + 1);
    }
    recovered_records
}

/// The record [`write_after`] writes.
const AFTER_KIND: u8 = 7;
const AFTER_PAYLOAD: &[u8] = b"written after recovery";

/// Opens the log as recovery left it (`Wal::open`, which must accept `end`), writes one record
/// durably and closes it; returns the record's LSN.
fn write_after(fs: &SimFs, end: &LogEnd, mode: ReplayMode) -> u64 {
    let config = WalConfig {
        dir: dir(),
        sync: SyncPolicy::Always,
        // Small, so the writer's zero-filling ahead (up to a segment's size) stays cheap.
        segment_bytes_max: 16 * 1024,
        space: None,
        keys: None,
    };
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let wal = match Wal::open(fs, config, end) {
        Ok(wal) => wal,
        Err(error) => panic!("the log end of {mode:?} cannot be continued: {error}"),
    };
    let lsn = wal
        .submit(AFTER_KIND, AFTER_PAYLOAD)
        .expect("a fresh log takes a record");
    wal.wait_durable_blocking(lsn).expect("SimFs syncs");
    wal.close();
    lsn
}

/// `wal_replay`: main-log segments with records of any kind.
pub fn wal_replay(input: &[u8]) {
    check_log(input, None);
}

/// `stream_log`: a stream's log, whose frames are stream records unless a step says
/// otherwise. Besides the log checks, each record is read back where the engine's frame
/// index says it is (`read_at` at the sum of the earlier frames' lengths), as stream reads do.
pub fn stream_log(input: &[u8]) {
    let fs_records = check_log(input, Some(stream_records::KIND_STREAM_OP));
    if fs_records.is_empty() {
        return;
    }
    // Rebuild the segments and recover once more, tracking frame positions as the engine does
    // (`local/streams/replay.rs`): each segment's frames start after its header.
    let mut builder = Input { bytes: input };
    let flags = builder.u8();
    let segments = segments_of(flags, &mut builder, Some(stream_records::KIND_STREAM_OP));
    let fs = disk(&segments);
    let mut positions = Vec::new();
    let mut segment_first = 0;
    let mut next_start = 0u64;
    let listed = wal::list_segments(&fs, &dir()).expect("SimFs lists");
    let end = wal::replay(&fs, &dir(), 1, ReplayMode::Recover, |lsn, kind, payload| {
        let segment = listed
            .iter()
            .rev()
            .find(|(first, _)| *first <= lsn)
            .map(|(first, path)| (*first, path.clone()));
        if let Some((first, path)) = segment {
            if first != segment_first {
                segment_first = first;
                next_start = 0;
            }
            positions.push((path, next_start, kind, payload.to_vec()));
        }
        next_start += (frame::FRAME_OVERHEAD_BYTES + payload.len()) as u64;
        Ok(())
    });
    if end.is_err() {
        return;
    }
    for (path, start, kind, payload) in positions {
        let len = frame::FRAME_OVERHEAD_BYTES + payload.len();
        let bytes = fs
            .read_at(&path, HEADER_BYTES as u64 + start, len)
            .expect("a replayed record can be read back");
        let found = frame::decode(&bytes).expect("a replayed record's frame decodes");
        assert_eq!((found.kind, found.payload), (kind, payload.as_slice()));
    }
}

/// `checkpoint_load`: a checkpoint file (and leftovers beside it), loaded by the production
/// loader; every part decoded. Byte 0: bit 0 leaves an unsealed file unsealed, bit 1 adds a
/// leftover `.tmp`, bit 3 ([`RAW`]) takes the rest as the file verbatim, bits 4-7 the LSN.
pub fn checkpoint_load(input: &[u8]) {
    let mut input = Input { bytes: input };
    let flags = input.u8();
    let mut bytes = if flags & RAW != 0 {
        input.take(usize::MAX).to_vec()
    } else {
        frame::header(CHECKPOINT_MAGIC).to_vec()
    };
    let mut n_frames = 0u64;
    let mut sealed = false;
    let mut n_steps = 0;
    while !input.is_empty() && n_steps < 256 {
        n_steps += 1;
        let step = input.u8();
        match step % 8 {
            0..=4 => {
                let kind = input.u8();
                let len = input.len(step & 0x40 != 0);
                frame::encode(kind, input.take(len), &mut bytes);
                n_frames += 1;
            }
            5 => {
                let len = input.len(step & 0x40 != 0);
                bytes.extend_from_slice(input.take(len));
            }
            6 => {
                let at = usize::from(u16::from_le_bytes([input.u8(), input.u8()]));
                if step & 0x40 != 0 {
                    bytes.truncate(at);
                } else {
                    let n_bytes = bytes.len().max(1);
                    if let Some(byte) = bytes.get_mut(at % n_bytes) {
                        *byte ^= 1 << (step >> 5 & 7);
                    }
                }
            }
            // The end frame with its count, right or off by the input's byte.
            _ => {
                let count = n_frames.wrapping_add(u64::from(input.u8() % 4 / 3));
                frame::encode(0xFF, &count.to_le_bytes(), &mut bytes);
                sealed = true;
            }
        }
    }
    if !sealed && flags & (1 | RAW) == 0 {
        frame::encode(0xFF, &n_frames.to_le_bytes(), &mut bytes);
    }
    let fs = SimFs::new();
    let lsn = u64::from(flags >> 4);
    put(&fs, &dir().join(checkpoint::checkpoint_name(lsn)), &bytes);
    if flags & 2 != 0 {
        // A leftover of an interrupted checkpoint: removed, never read.
        put(
            &fs,
            &dir().join(format!("{}.tmp", checkpoint::checkpoint_name(lsn + 1))),
            b"x",
        );
    }
    let mut parts = Vec::new();
    let loaded = checkpoint::load_newest(&fs, &dir(), |kind, payload| {
        decode_record(kind, payload);
        parts.push((kind, payload.to_vec()));
        Ok(())
    });
    assert!(
        fs.list(&dir())
            .expect("SimFs lists")
            .iter()
            .all(|n| !n.ends_with(".tmp")),
        "a leftover .tmp checkpoint survived loading"
    );
    match loaded {
        Ok(found) => {
            assert_eq!(found, Some(lsn));
            assert!(
                parts.iter().all(|(kind, _)| *kind != 0xFF),
                "the end frame handed out"
            );
            // Written back by the production writer, the parts load again unchanged.
            let again = SimFs::new();
            let path = checkpoint::write(&again, &dir(), lsn, parts.clone())
                .expect("SimFs writes a checkpoint");
            assert_eq!(path, dir().join(checkpoint::checkpoint_name(lsn)));
            let mut reloaded = Vec::new();
            checkpoint::load_newest(&again, &dir(), |kind, payload| {
                reloaded.push((kind, payload.to_vec()));
                Ok(())
            })
            .expect("a written checkpoint loads");
            assert_eq!(reloaded, parts, "a rewritten checkpoint loads other parts");
        }
        Err(error) => assert!(
            parts.is_empty(),
            "a refused checkpoint ({error}) handed out {} parts",
            parts.len()
        ),
    }
}
