//! Checkpoints: the live state as of a log position, written atomically.
//!
//! A checkpoint is `checkpoint-<lsn>.ckpt`: a header, the state as frames, and a closing
//! `END` frame carrying the number of state frames, so a checkpoint that is cut short is never
//! mistaken for a complete one. It is written to a `.tmp` file, synced, renamed into place and
//! the directory synced; only then are the log segments it covers deleted. A crash at any step
//! leaves either the old checkpoint with its segments or the new one.

use std::path::{Path, PathBuf};

use crate::frame::{self, HEADER_BYTES};
use crate::io::{AppendFile, FileSystem};
use crate::seal::{self, Keyring, SealError};
use crate::wal::{list_segments, RecoveryError};

pub const CHECKPOINT_MAGIC: &[u8; 8] = b"BATONCKP";
pub(crate) const END_KIND: u8 = 0xFF;

pub fn checkpoint_name(lsn: u64) -> String {
    format!("checkpoint-{lsn:020}.ckpt")
}

fn parse_checkpoint_name(name: &str) -> Option<u64> {
    name.strip_prefix("checkpoint-")?
        .strip_suffix(".ckpt")?
        .parse()
        .ok()
}

/// Writes a checkpoint frame by frame, so a large state never has to be in memory at once.
pub struct CheckpointWriter<'a> {
    fs: &'a dyn FileSystem,
    dir: PathBuf,
    lsn: u64,
    tmp_path: PathBuf,
    file: Box<dyn AppendFile>,
    buf: Vec<u8>,
    n_frames: u64,
    keys: Option<&'a Keyring>,
    /// Renamed into place: nothing to clean up.
    finished: bool,
}

impl<'a> CheckpointWriter<'a> {
    /// Starts `checkpoint-<lsn>.ckpt.tmp`; the checkpoint covers every record up to `lsn`.
    pub fn begin(fs: &'a dyn FileSystem, dir: &Path, lsn: u64) -> std::io::Result<Self> {
        let tmp_path = dir.join(format!("{}.tmp", checkpoint_name(lsn)));
        let file = fs.create(&tmp_path)?;
        let mut writer = CheckpointWriter {
            fs,
            dir: dir.to_path_buf(),
            lsn,
            tmp_path,
            file,
            buf: Vec::with_capacity(1 << 20),
            n_frames: 0,
            keys: None,
            finished: false,
        };
        writer.file.append(&frame::header(CHECKPOINT_MAGIC))?;
        Ok(writer)
    }

    /// Seals the state frames with `keys` (the end frame, a count, stays plain).
    pub fn sealed_with(mut self, keys: Option<&'a Keyring>) -> Self {
        self.keys = keys;
        self
    }

    /// Appends one frame; kind `0xFF` is reserved.
    pub fn frame(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        assert!(kind != END_KIND, "kind 0xFF is reserved for the end frame");
        seal::encode_frame(self.keys, kind, payload, &mut self.buf);
        self.n_frames += 1;
        if self.buf.len() >= 1 << 20 {
            self.file.append(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Seals, syncs and renames the checkpoint into place, then syncs the directory.
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        frame::encode(END_KIND, &self.n_frames.to_le_bytes(), &mut self.buf);
        self.file.append(&self.buf)?;
        self.file.sync()?;
        let final_path = self.dir.join(checkpoint_name(self.lsn));
        self.fs.rename(&self.tmp_path, &final_path)?;
        self.finished = true;
        self.fs.sync_dir(&self.dir)?;
        Ok(final_path)
    }
}

impl Drop for CheckpointWriter<'_> {
    /// An unfinished checkpoint's file goes at once: on a full disk its space is what the
    /// broker needs most.
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.fs.remove(&self.tmp_path);
        }
    }
}

/// Writes a checkpoint covering every record up to `lsn` from `(kind, payload)` frames.
pub fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    lsn: u64,
    frames: impl IntoIterator<Item = (u8, Vec<u8>)>,
) -> std::io::Result<PathBuf> {
    let mut writer = CheckpointWriter::begin(fs, dir, lsn)?;
    for (kind, payload) in frames {
        writer.frame(kind, &payload)?;
    }
    writer.finish()
}

/// Reads the newest complete checkpoint, handing each state frame `(kind, payload)` to
/// `each`; returns its LSN, or `None` when there is no checkpoint. Leftover `.tmp` files are
/// removed.
pub fn load_newest(
    fs: &dyn FileSystem,
    dir: &Path,
    each: impl FnMut(u8, &[u8]) -> Result<(), String>,
) -> Result<Option<u64>, RecoveryError> {
    load_newest_with(fs, dir, None, each)
}

/// [`load_newest`] of a checkpoint whose frames may be sealed, opened with `keys`.
pub fn load_newest_with(
    fs: &dyn FileSystem,
    dir: &Path,
    keys: Option<&Keyring>,
    mut each: impl FnMut(u8, &[u8]) -> Result<(), String>,
) -> Result<Option<u64>, RecoveryError> {
    let names = fs.list(dir).map_err(|source| RecoveryError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for name in names
        .iter()
        .filter(|n| n.starts_with("checkpoint-") && n.ends_with(".tmp"))
    {
        let _ = fs.remove(&dir.join(name));
    }
    let Some((lsn, name)) = names
        .iter()
        .filter_map(|name| parse_checkpoint_name(name).map(|lsn| (lsn, name)))
        .max_by_key(|(lsn, _)| *lsn)
    else {
        return Ok(None);
    };
    let path = dir.join(name);
    let bytes = fs.read(&path).map_err(|source| RecoveryError::Io {
        path: path.clone(),
        source,
    })?;
    let corrupt = |offset: usize| RecoveryError::Corrupt {
        path: path.clone(),
        offset_bytes: offset as u64,
    };
    frame::check_header(&bytes, CHECKPOINT_MAGIC).map_err(|_| corrupt(0))?;
    // Check the whole file before handing anything out: a checkpoint is used whole or not at all.
    let mut frames = Vec::new();
    let mut offset = HEADER_BYTES;
    loop {
        let rest = bytes.get(offset..).unwrap_or_default();
        let found = frame::decode(rest).map_err(|_| corrupt(offset))?;
        if found.kind == END_KIND {
            let count = found
                .payload
                .try_into()
                .map(u64::from_le_bytes)
                .map_err(|_| corrupt(offset))?;
            if count != frames.len() as u64 || offset + found.len_bytes != bytes.len() {
                return Err(corrupt(offset));
            }
            break;
        }
        frames.push((offset, found));
        offset += found.len_bytes;
    }
    // Every frame must open before any is handed out (used whole or not at all); each is
    // opened again to hand it out (plain frames cost nothing to open), so a large checkpoint
    // is never held decrypted whole.
    for (offset, found) in &frames {
        open_part(keys, &path, *offset, found)?;
    }
    for (offset, found) in frames {
        let (kind, payload) = open_part(keys, &path, offset, &found)?;
        each(kind, &payload).map_err(|reason| RecoveryError::Apply {
            path: path.clone(),
            lsn: offset as u64,
            reason,
        })?;
    }
    Ok(Some(lsn))
}

/// A checkpoint frame opened with `keys`. A sealed frame too short to be one was never
/// written so: corruption, not a missing key.
fn open_part<'f>(
    keys: Option<&Keyring>,
    path: &Path,
    offset: usize,
    found: &frame::Frame<'f>,
) -> Result<(u8, std::borrow::Cow<'f, [u8]>), RecoveryError> {
    seal::open_frame(keys, found).map_err(|source| match source {
        SealError::Malformed { .. } => RecoveryError::Corrupt {
            path: path.to_path_buf(),
            offset_bytes: offset as u64,
        },
        source => RecoveryError::Sealed {
            path: path.to_path_buf(),
            offset_bytes: offset as u64,
            source,
        },
    })
}

/// Deletes older checkpoints and every segment whose records all have LSN ≤ `lsn`.
pub fn remove_covered(fs: &dyn FileSystem, dir: &Path, lsn: u64) -> std::io::Result<u64> {
    let mut removed = 0;
    for name in fs.list(dir)? {
        if parse_checkpoint_name(&name).is_some_and(|other| other < lsn) {
            fs.remove(&dir.join(&name))?;
            removed += 1;
        }
    }
    let segments = list_segments(fs, dir)?;
    for pair in segments.windows(2) {
        if let [(_, path), (next_first, _)] = pair {
            if *next_first <= lsn + 1 {
                fs.remove(path)?;
                removed += 1;
            }
        }
    }
    fs.sync_dir(dir)?;
    Ok(removed)
}
