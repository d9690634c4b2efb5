//! The one seam between Baton's storage and the file system.
//!
//! Everything the WAL and checkpoints do to disk goes through [`FileSystem`], so tests can
//! swap the real disk ([`RealFs`]) for [`SimFs`], a simulated disk that models what survives a
//! power loss: file contents that were synced, directory entries whose directory was synced,
//! and optionally a torn prefix of the last unsynced write. Tests then run thousands of seeded
//! crash-and-recover schedules in process.

mod sim;
mod sim_kit;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

pub use sim::{CrashMode, SimCall, SimFaults, SimFs};
pub use sim_kit::{sim_random, SimRng, SimRun, SimSchedule};

/// Whether `error` means the disk (or the user's quota) has no space left, as opposed to a
/// disk that failed: the first is a state the broker waits out, the second is not.
pub fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// A file written front to back (a WAL segment or a checkpoint). Its *logical* length is where
/// the next `append` goes; the file may be longer, zero-filled by `prepare`.
pub trait AppendFile: Send {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `fdatasync`: after it returns, everything appended so far survives power loss.
    fn sync(&mut self) -> io::Result<()>;
    /// The logical length: bytes appended, counting from the start of the file.
    fn len_bytes(&self) -> u64;
    /// Makes the file at least `upto_bytes` long, zero-filled past its end, and syncs that.
    /// Later appends inside the prepared range then change no file size, so their `fdatasync`
    /// writes data only, not metadata: on ext4 that halves its latency and makes it steadier.
    fn prepare(&mut self, upto_bytes: u64) -> io::Result<()>;
}

pub trait FileSystem: Send + Sync + 'static {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens for appending at logical length `position_bytes` (anything after it is
    /// overwritten), creating the file if missing.
    fn open_at(&self, path: &Path, position_bytes: u64) -> io::Result<Box<dyn AppendFile>>;
    /// Creates the file empty (truncating any existing one) and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Cuts the file to `len_bytes` and syncs it.
    fn truncate(&self, path: &Path, len_bytes: u64) -> io::Result<()>;
    /// Makes renames, creations and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The file's current length in bytes (zero-filled space included).
    fn file_len(&self, path: &Path) -> io::Result<u64>;
    /// Bytes an unprivileged writer may still use on the file system that holds `dir`.
    fn free_bytes(&self, dir: &Path) -> io::Result<u64>;
    /// Reads exactly `len_bytes` at `offset_bytes` (a positioned read: stream record bodies are
    /// read back from their log segments this way).
    fn read_at(&self, path: &Path, offset_bytes: u64, len_bytes: usize) -> io::Result<Vec<u8>> {
        let all = self.read(path)?;
        let start = usize::try_from(offset_bytes).unwrap_or(usize::MAX);
        all.get(start..start.saturating_add(len_bytes))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

/// The real disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealFile {
    file: File,
    position_bytes: u64,
    physical_bytes: u64,
}

impl AppendFile for RealFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(bytes, self.position_bytes)?;
        self.position_bytes += bytes.len() as u64;
        self.physical_bytes = self.physical_bytes.max(self.position_bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len_bytes(&self) -> u64 {
        self.position_bytes
    }

    fn prepare(&mut self, upto_bytes: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        const CHUNK: usize = 1 << 20;
        if upto_bytes <= self.physical_bytes {
            return Ok(());
        }
        let zeros = vec![0u8; CHUNK];
        let mut at = self.physical_bytes;
        while at < upto_bytes {
            let n = (upto_bytes - at).min(CHUNK as u64) as usize;
            self.file
                .write_all_at(zeros.get(..n).unwrap_or_default(), at)?;
            at += n as u64;
        }
        self.file.sync_data()?;
        self.physical_bytes = upto_bytes;
        Ok(())
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn read_at(&self, path: &Path, offset_bytes: u64, len_bytes: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = fs::File::open(path)?;
        let mut buf = vec![0u8; len_bytes];
        file.read_exact_at(&mut buf, offset_bytes)?;
        Ok(buf)
    }

    fn open_at(&self, path: &Path, position_bytes: u64) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        let physical_bytes = file.metadata()?.len();
        Ok(Box::new(RealFile {
            file,
            position_bytes,
            physical_bytes,
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(RealFile {
            file,
            position_bytes: 0,
            physical_bytes: 0,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn truncate(&self, path: &Path, len_bytes: u64) -> io::Result<()> {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len_bytes)?;
        file.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
        let stat = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
        Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
}
