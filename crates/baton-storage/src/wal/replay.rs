//! Reading the log back: every record in LSN order, a torn tail cut, gaps and corruption
//! reported precisely.
//!
//! # Invariant
//! [`LogEnd::last_segment`] names the segment the writer continues *and* where its records
//! end, as one value: a segment that holds a record is never reopened below that record's end.
//! (They were two fields once; cutting away an empty, torn newest segment left the length of
//! the removed file paired with the segment before it, and the writer then overwrote that
//! segment's acknowledged records from its start.)

use std::path::{Path, PathBuf};

use crate::frame::{self, FrameError, HEADER_BYTES};
use crate::io::FileSystem;
use crate::seal::{self, Keyring, SealError};

use super::{list_segments, SEGMENT_MAGIC};

/// Where segments that a repair could not keep in the log are moved (inside the log's
/// directory), so that nothing readable is deleted.
pub const DROPPED_DIR: &str = "dropped";

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt record in {path} at byte {offset_bytes}; the data after it cannot be trusted (run `baton storage verify`, or start with `--repair` to cut the log there and lose what follows)")]
    Corrupt { path: PathBuf, offset_bytes: u64 },
    #[error(
        "log segment missing: {path} starts at record {found}, record {expected} was expected (run `baton storage verify` to see what survives, or start with `--repair` to keep the records before the gap and move the later segments to {DROPPED_DIR}/)"
    )]
    Gap {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// Never cut, not even by a repair: the frame is whole, only its key is missing.
    #[error("record at byte {offset_bytes} of {path} cannot be decrypted: {source} (`baton storage verify --encryption-key-file ...` lists every such frame)")]
    Sealed {
        path: PathBuf,
        offset_bytes: u64,
        #[source]
        source: SealError,
    },
    #[error("record {lsn} in {path} could not be applied: {reason}")]
    Apply {
        path: PathBuf,
        lsn: u64,
        reason: String,
    },
}

/// The segment the log continues in, and where its records end in it (the zero-filled,
/// prepared space after them is not part of the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastSegment {
    pub first_lsn: u64,
    pub path: PathBuf,
    pub len_bytes: u64,
}

/// Records missing from the log: the segment after `missing_from` starts at `resumes_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGap {
    /// The first record that no segment holds.
    pub missing_from: u64,
    /// The first record of the segment after the gap.
    pub resumes_at: u64,
    /// The segments from the one after the gap to the end of the log.
    pub segments_after: Vec<PathBuf>,
    /// Complete records in those segments (they cannot be applied: what they change depends on
    /// the missing records).
    pub records_after: u64,
}

/// Where the log ends after recovery, so the writer can continue it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEnd {
    pub next_lsn: u64,
    /// The newest segment that holds the log's end, if any segment exists.
    pub last_segment: Option<LastSegment>,
    /// Bytes cut from a torn tail.
    pub truncated_bytes: u64,
    /// A gap found (by `Verify`), or cut at (by `Repair`, which moved the later segments to
    /// [`DROPPED_DIR`]).
    pub gap: Option<LogGap>,
}

impl LogEnd {
    /// The end of an empty log whose first record will be `next_lsn`.
    pub fn empty(next_lsn: u64) -> Self {
        LogEnd {
            next_lsn,
            last_segment: None,
            truncated_bytes: 0,
            gap: None,
        }
    }
}

/// What `replay` may do to the files it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayMode {
    /// Cut a torn or corrupt tail of the last segment; any other corruption, and a gap, is an
    /// error.
    Recover,
    /// Cut the log at the first corruption or gap wherever it is; later segments are moved to
    /// [`DROPPED_DIR`].
    Repair,
    /// Change nothing; report what `Recover` would cut, and a gap with what follows it.
    Verify,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> RecoveryError + '_ {
    move |source| RecoveryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One record as replay hands it over, opened if it was sealed.
#[derive(Debug, Clone, Copy)]
pub struct Replayed<'a> {
    pub lsn: u64,
    /// The record kind (without the sealed bit).
    pub kind: u8,
    pub payload: &'a [u8],
    /// Bytes the frame occupies in its segment, overhead (and sealing) included.
    pub frame_bytes: usize,
}

type Apply<'a> = dyn FnMut(Replayed<'_>) -> Result<(), String> + 'a;

/// How one segment reads.
struct SegmentRead {
    /// The LSN after its last complete record.
    next_lsn: u64,
    /// Where its complete records end.
    records_end: u64,
    /// Where it must be cut (a torn or, in repair, corrupt part), if anywhere.
    cut_at: Option<u64>,
    len_bytes: u64,
}

/// How a replay reads every segment: from which LSN it applies, whether it repairs, and
/// the keys that open sealed frames.
#[derive(Clone, Copy)]
struct Reading<'k> {
    from_lsn: u64,
    repair: bool,
    keys: Option<&'k Keyring>,
}

/// Reads one segment's frames from `first_lsn`, applying those at or after `from_lsn`.
fn read_segment(
    bytes: &[u8],
    path: &Path,
    first_lsn: u64,
    is_last: bool,
    reading: Reading<'_>,
    apply: &mut Apply<'_>,
) -> Result<SegmentRead, RecoveryError> {
    let Reading {
        from_lsn,
        repair,
        keys,
    } = reading;
    let mut read = SegmentRead {
        next_lsn: first_lsn,
        records_end: HEADER_BYTES as u64,
        cut_at: None,
        len_bytes: bytes.len() as u64,
    };
    match frame::check_header(bytes, SEGMENT_MAGIC) {
        Ok(_) => {}
        Err(FrameError::Truncated) if is_last => {
            read.cut_at = Some(0);
            return Ok(read);
        }
        Err(_) if repair => {
            read.cut_at = Some(0);
            return Ok(read);
        }
        Err(_) => {
            return Err(RecoveryError::Corrupt {
                path: path.to_path_buf(),
                offset_bytes: 0,
            })
        }
    }
    let mut offset = HEADER_BYTES;
    while offset < bytes.len() {
        let rest = bytes.get(offset..).unwrap_or_default();
        match frame::decode(rest) {
            Ok(found) => {
                if read.next_lsn >= from_lsn {
                    let (kind, payload) = match seal::open_frame(keys, &found) {
                        Ok(opened) => opened,
                        // Too short to be a sealed frame: never written so, so corrupt.
                        Err(SealError::Malformed { .. }) if repair => {
                            read.cut_at = Some(offset as u64);
                            break;
                        }
                        Err(SealError::Malformed { .. }) => {
                            return Err(RecoveryError::Corrupt {
                                path: path.to_path_buf(),
                                offset_bytes: offset as u64,
                            })
                        }
                        Err(source) => {
                            return Err(RecoveryError::Sealed {
                                path: path.to_path_buf(),
                                offset_bytes: offset as u64,
                                source,
                            })
                        }
                    };
                    let record = Replayed {
                        lsn: read.next_lsn,
                        kind,
                        payload: &payload,
                        frame_bytes: found.len_bytes,
                    };
                    apply(record).map_err(|reason| RecoveryError::Apply {
                        path: path.to_path_buf(),
                        lsn: read.next_lsn,
                        reason,
                    })?;
                }
                read.next_lsn += 1;
                offset += found.len_bytes;
            }
            // Space prepared (zero-filled) ahead of the writer: the clean end.
            Err(_) if rest.iter().all(|b| *b == 0) => break,
            Err(error) => {
                if (is_last && tail_is_unreadable(rest, error)) || repair {
                    read.cut_at = Some(offset as u64);
                    break;
                }
                return Err(RecoveryError::Corrupt {
                    path: path.to_path_buf(),
                    offset_bytes: offset as u64,
                });
            }
        }
    }
    read.records_end = offset as u64;
    Ok(read)
}

/// Counts the complete records of segments the log cannot use (after a gap or a repaired
/// cut), reading each up to its first unreadable frame.
fn count_records(fs: &dyn FileSystem, segments: &[(u64, PathBuf)]) -> u64 {
    let mut n = 0;
    for (_, path) in segments {
        let Ok(bytes) = fs.read(path) else { continue };
        if frame::check_header(&bytes, SEGMENT_MAGIC).is_err() {
            continue;
        }
        let mut offset = HEADER_BYTES;
        while let Ok(found) = frame::decode(bytes.get(offset..).unwrap_or_default()) {
            n += 1;
            offset += found.len_bytes;
        }
    }
    n
}

/// Whether the segment at `path` holds no complete record (an unreadable header included).
fn holds_no_record(fs: &dyn FileSystem, path: &Path) -> bool {
    count_records(fs, &[(0, path.to_path_buf())]) == 0
}

/// Moves `segments` into [`DROPPED_DIR`] inside `dir` and makes that durable.
fn move_aside(
    fs: &dyn FileSystem,
    dir: &Path,
    segments: &[(u64, PathBuf)],
) -> Result<(), RecoveryError> {
    let dropped = dir.join(DROPPED_DIR);
    fs.create_dir_all(&dropped).map_err(io_error(&dropped))?;
    for (_, path) in segments {
        let Some(name) = path.file_name() else {
            continue;
        };
        let mut target = dropped.join(name);
        let mut n = 1;
        while fs.file_len(&target).is_ok() {
            target = dropped.join(format!("{}.{n}", name.to_string_lossy()));
            n += 1;
        }
        tracing::warn!(segment = %path.display(), moved_to = %target.display(), "moving a log segment the repaired log cannot use");
        fs.rename(path, &target).map_err(io_error(path))?;
    }
    fs.sync_dir(&dropped).map_err(io_error(&dropped))?;
    fs.sync_dir(dir).map_err(io_error(dir))?;
    Ok(())
}

/// Reads every record with LSN ≥ `from_lsn` in order and hands it to `apply`. A torn or corrupt
/// tail of the last segment is cut and reported in `LogEnd::truncated_bytes`; corruption
/// anywhere else, and a missing segment, is an error naming the file and offset (see
/// `ReplayMode` for the other modes).
pub fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    from_lsn: u64,
    mode: ReplayMode,
    mut apply: impl FnMut(u64, u8, &[u8]) -> Result<(), String>,
) -> Result<LogEnd, RecoveryError> {
    replay_with(fs, dir, from_lsn, mode, None, |record| {
        apply(record.lsn, record.kind, record.payload)
    })
}

/// [`replay`] of a log whose frames may be sealed: each is opened with `keys` (a sealed frame
/// without its key is [`RecoveryError::Sealed`]), and each record comes with its frame's size.
pub fn replay_with(
    fs: &dyn FileSystem,
    dir: &Path,
    from_lsn: u64,
    mode: ReplayMode,
    keys: Option<&Keyring>,
    mut apply: impl FnMut(Replayed<'_>) -> Result<(), String>,
) -> Result<LogEnd, RecoveryError> {
    let repair = mode == ReplayMode::Repair;
    let segments = list_segments(fs, dir).map_err(io_error(dir))?;
    let mut end = LogEnd::empty(from_lsn);
    let mut expected: Option<u64> = None;
    for (index, (first_lsn, path)) in segments.iter().enumerate() {
        let (first_lsn, path) = (*first_lsn, path.clone());
        let is_last = index + 1 == segments.len();
        // Skip segments that end before `from_lsn` without reading them.
        if segments
            .get(index + 1)
            .is_some_and(|(next_first, _)| *next_first <= from_lsn)
        {
            continue;
        }
        let contiguous = match expected {
            Some(expected) => first_lsn == expected,
            None => first_lsn <= from_lsn,
        };
        if !contiguous && is_last && mode != ReplayMode::Verify && holds_no_record(fs, &path) {
            // The leftover of a segment creation that failed (its directory entry reached the
            // disk, its header or records did not): it holds nothing to keep.
            tracing::warn!(segment = %path.display(), "removing an empty leftover log segment");
            fs.remove(&path).map_err(io_error(&path))?;
            fs.sync_dir(dir).map_err(io_error(dir))?;
            break;
        }
        if !contiguous {
            let missing_from = expected.unwrap_or(from_lsn);
            let after = segments.get(index..).unwrap_or_default();
            end.gap = Some(gap_at(fs, dir, mode, missing_from, first_lsn, path, after)?);
            break;
        }
        let bytes = fs.read(&path).map_err(io_error(&path))?;
        let reading = Reading {
            from_lsn,
            repair,
            keys,
        };
        let read = read_segment(&bytes, &path, first_lsn, is_last, reading, &mut apply)?;
        end.next_lsn = read.next_lsn;
        expected = Some(read.next_lsn);
        let Some(cut) = read.cut_at else {
            end.last_segment = Some(LastSegment {
                first_lsn,
                path,
                len_bytes: read.records_end,
            });
            continue;
        };
        let dropped = read.len_bytes - cut;
        tracing::warn!(segment = %path.display(), offset_bytes = cut, dropped_bytes = dropped, "cutting a torn or corrupt log tail");
        end.truncated_bytes += dropped;
        if mode == ReplayMode::Verify {
            if cut > 0 {
                end.last_segment = Some(LastSegment {
                    first_lsn,
                    path,
                    len_bytes: cut,
                });
            }
            break;
        }
        if cut == 0 {
            // Nothing of it is readable, so it holds no record: the log continues in the
            // segment before it (still `end.last_segment`), or in a new one.
            fs.remove(&path).map_err(io_error(&path))?;
        } else {
            fs.truncate(&path, cut).map_err(io_error(&path))?;
            end.last_segment = Some(LastSegment {
                first_lsn,
                path,
                len_bytes: cut,
            });
        }
        // Only a repair cuts before the last segment; what follows the cut cannot be applied.
        let later = segments.get(index + 1..).unwrap_or_default();
        if !later.is_empty() {
            end.gap = Some(LogGap {
                missing_from: read.next_lsn,
                resumes_at: later.first().map_or(read.next_lsn, |(lsn, _)| *lsn),
                segments_after: later.iter().map(|(_, p)| p.clone()).collect(),
                records_after: count_records(fs, later),
            });
            move_aside(fs, dir, later)?;
        }
        fs.sync_dir(dir).map_err(io_error(dir))?;
        break;
    }
    continue_from_checkpoint(&mut end, from_lsn, mode);
    Ok(end)
}

/// When the log ends before what the checkpoint covers (its records are in the checkpoint),
/// numbering on in the old segment would give new records LSNs that replay skips, so the log
/// continues in a new segment at `from_lsn`. That holds after a repair that cut the log at a
/// gap or corruption too (a repaired log is continued like any other: before this, one that
/// ended below `from_lsn` went on in its old segment, and the next recovery skipped the
/// records acknowledged after the repair); only a verification's report keeps the end it found
/// before a gap.
fn continue_from_checkpoint(end: &mut LogEnd, from_lsn: u64, mode: ReplayMode) {
    if end.next_lsn < from_lsn && (end.gap.is_none() || mode == ReplayMode::Repair) {
        tracing::warn!(
            log_end = end.next_lsn,
            from_lsn,
            "the log ends before the checkpoint's position; continuing in a new segment"
        );
        end.next_lsn = from_lsn;
        end.last_segment = None;
    }
}

/// The gap before segment `path` (which starts at `first_lsn`, where `missing_from` was
/// expected): an error when recovering; otherwise what it leaves out, and with a repair the
/// segments from `path` on moved aside.
fn gap_at(
    fs: &dyn FileSystem,
    dir: &Path,
    mode: ReplayMode,
    missing_from: u64,
    first_lsn: u64,
    path: PathBuf,
    after: &[(u64, PathBuf)],
) -> Result<LogGap, RecoveryError> {
    if mode == ReplayMode::Recover {
        return Err(RecoveryError::Gap {
            path,
            expected: missing_from,
            found: first_lsn,
        });
    }
    let gap = LogGap {
        missing_from,
        resumes_at: first_lsn,
        segments_after: after.iter().map(|(_, p)| p.clone()).collect(),
        records_after: count_records(fs, after),
    };
    tracing::warn!(
        missing_from,
        resumes_at = first_lsn,
        segments_after = after.len(),
        records_after = gap.records_after,
        "the log has a gap"
    );
    if mode == ReplayMode::Repair {
        move_aside(fs, dir, after)?;
    }
    Ok(gap)
}

/// True when the bytes from a failed frame to the end of the file hold no readable frame at the
/// place the failed one says the next begins: the mark of a write that did not finish, as
/// opposed to damage in the middle of the log.
fn tail_is_unreadable(rest: &[u8], error: FrameError) -> bool {
    match error {
        FrameError::Truncated => true,
        FrameError::Corrupt => {
            let declared = rest
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
                .unwrap_or(u32::MAX);
            if declared > frame::PAYLOAD_BYTES_MAX {
                return !has_frame_anywhere(rest);
            }
            let next = frame::FRAME_OVERHEAD_BYTES + declared as usize;
            match rest.get(next..) {
                None | Some([]) => true,
                Some(after) => frame::decode(after).is_err() && !has_frame_anywhere(after),
            }
        }
    }
}

/// Whether any complete, valid frame starts somewhere in `bytes` (bounded scan).
fn has_frame_anywhere(bytes: &[u8]) -> bool {
    const SCAN_BYTES_MAX: usize = 1 << 20;
    (1..bytes.len().min(SCAN_BYTES_MAX)).any(|start| {
        bytes.get(start..).is_some_and(|rest| matches!(frame::decode(rest), Ok(f) if f.len_bytes > frame::FRAME_OVERHEAD_BYTES))
    })
}
