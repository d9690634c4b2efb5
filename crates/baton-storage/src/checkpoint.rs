//! Checkpoints: the live state as of a log position, written atomically.
//!
//! A checkpoint is `checkpoint-<lsn>.ckpt`: a header, the state as frames, and a closing
//! `END` frame carrying the number of state frames, so a checkpoint that is cut short is never
//! mistaken for a complete one. It is written to a `.tmp` file, synced, renamed into place and
//! the directory synced; only then are the log segments it covers deleted. A crash at any step
//! leaves either the old checkpoint with its segments or the new one.

use std::path::{Path, PathBuf};

use crate::frame::{self, HEADER_BYTES};
use crate::io::FileSystem;
use crate::wal::{list_segments, RecoveryError};

pub const CHECKPOINT_MAGIC: &[u8; 8] = b"BATONCKP";
const END_KIND: u8 = 0xFF;

/// A loaded checkpoint: the LSN it covers and its state frames `(kind, payload)`.
pub type Loaded = (u64, Vec<(u8, Vec<u8>)>);

pub fn checkpoint_name(lsn: u64) -> String {
    format!("checkpoint-{lsn:020}.ckpt")
}

fn parse_checkpoint_name(name: &str) -> Option<u64> {
    name.strip_prefix("checkpoint-")?
        .strip_suffix(".ckpt")?
        .parse()
        .ok()
}

/// Writes a checkpoint covering every record up to `lsn`. `frames` yields `(kind, payload)`;
/// kind `0xFF` is reserved.
pub fn write(
    fs: &dyn FileSystem,
    dir: &Path,
    lsn: u64,
    frames: impl IntoIterator<Item = (u8, Vec<u8>)>,
) -> std::io::Result<PathBuf> {
    let final_path = dir.join(checkpoint_name(lsn));
    let tmp_path = dir.join(format!("{}.tmp", checkpoint_name(lsn)));
    let mut file = fs.create(&tmp_path)?;
    file.append(&frame::header(CHECKPOINT_MAGIC))?;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut n_frames: u64 = 0;
    for (kind, payload) in frames {
        assert!(kind != END_KIND, "kind 0xFF is reserved for the end frame");
        frame::encode(kind, &payload, &mut buf);
        n_frames += 1;
        if buf.len() >= 1 << 20 {
            file.append(&buf)?;
            buf.clear();
        }
    }
    frame::encode(END_KIND, &n_frames.to_le_bytes(), &mut buf);
    file.append(&buf)?;
    file.sync()?;
    fs.rename(&tmp_path, &final_path)?;
    fs.sync_dir(dir)?;
    Ok(final_path)
}

/// The newest complete checkpoint: its LSN and state frames. Leftover `.tmp` files are removed.
pub fn load_newest(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Loaded>, RecoveryError> {
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
            return Ok(Some((lsn, frames)));
        }
        frames.push((found.kind, found.payload.to_vec()));
        offset += found.len_bytes;
    }
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
