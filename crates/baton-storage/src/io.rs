//! The one seam between Baton's storage and the file system.
//!
//! Everything the WAL and checkpoints do to disk goes through [`FileSystem`], so tests can
//! swap the real disk ([`RealFs`]) for [`SimFs`], a simulated disk that models what survives a
//! power loss: file contents that were synced, directory entries whose directory was synced,
//! and optionally a torn prefix of the last unsynced write. Tests then run thousands of seeded
//! crash-and-recover schedules in process.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// A file opened for appending (the WAL segment or a checkpoint being written).
pub trait AppendFile: Send {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// `fdatasync`: after it returns, everything appended so far survives power loss.
    fn sync(&mut self) -> io::Result<()>;
    fn len_bytes(&self) -> u64;
}

pub trait FileSystem: Send + Sync + 'static {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens for appending, creating the file if missing.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    /// Creates the file empty (truncating any existing one) and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Cuts the file to `len_bytes` and syncs it.
    fn truncate(&self, path: &Path, len_bytes: u64) -> io::Result<()>;
    /// Makes renames, creations and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

struct RealFile {
    file: File,
    len_bytes: u64,
}

impl AppendFile for RealFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len_bytes += bytes.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len_bytes(&self) -> u64 {
        self.len_bytes
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

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len_bytes = file.metadata()?.len();
        Ok(Box::new(RealFile { file, len_bytes }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(RealFile { file, len_bytes: 0 }))
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
}

/// How much of unsynced data survives a simulated crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced byte is lost.
    LoseUnsynced,
    /// Of each file's unsynced bytes, the first `keep_bytes` survive (a torn write).
    Torn { keep_bytes: u64 },
}

#[derive(Debug, Default, Clone)]
struct SimFile {
    durable: Vec<u8>,
    pending: Vec<u8>,
}

#[derive(Debug, Default)]
struct SimState {
    /// Current view: path → file id.
    entries: BTreeMap<PathBuf, u64>,
    /// What a crash reverts the directory to: entries as of each directory's last sync.
    durable_entries: BTreeMap<PathBuf, u64>,
    files: BTreeMap<u64, SimFile>,
    next_id: u64,
    /// When set, every write fails with this error kind (a full or failed disk).
    fail_writes: Option<io::ErrorKind>,
}

/// A simulated disk. Cloning shares the disk.
#[derive(Debug, Default, Clone)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

struct SimAppend {
    state: Arc<Mutex<SimState>>,
    id: u64,
}

impl SimFs {
    pub fn new() -> Self {
        SimFs::default()
    }

    /// Simulates power loss: unsynced data and unsynced directory changes are lost, except a
    /// torn prefix when asked for.
    pub fn crash(&self, mode: CrashMode) {
        Self::crash_state(&mut self.state.lock(), mode);
    }

    fn crash_state(state: &mut SimState, mode: CrashMode) {
        state.entries = state.durable_entries.clone();
        let live: Vec<u64> = state.entries.values().copied().collect();
        state.files.retain(|id, _| live.contains(id));
        for file in state.files.values_mut() {
            let pending = std::mem::take(&mut file.pending);
            if let CrashMode::Torn { keep_bytes } = mode {
                let keep = pending
                    .len()
                    .min(usize::try_from(keep_bytes).unwrap_or(usize::MAX));
                file.durable
                    .extend_from_slice(pending.get(..keep).unwrap_or_default());
            }
        }
    }

    /// Power loss that the running process does not survive: like `crash`, and every later
    /// write fails until `fail_writes(None)` ("power on"), so nothing written after the instant
    /// of the crash can sneak onto the disk.
    pub fn power_off(&self, mode: CrashMode) {
        let mut state = self.state.lock();
        Self::crash_state(&mut state, mode);
        state.fail_writes = Some(io::ErrorKind::BrokenPipe);
    }

    /// Makes every later write fail with `kind` (e.g. `StorageFull`), or succeed again.
    pub fn fail_writes(&self, kind: Option<io::ErrorKind>) {
        self.state.lock().fail_writes = kind;
    }

    /// Flips one bit of a file's durable contents.
    pub fn flip_bit(&self, path: &Path, offset_bytes: u64, bit: u8) {
        let mut state = self.state.lock();
        let Some(id) = state.entries.get(path).copied() else {
            return;
        };
        if let Some(file) = state.files.get_mut(&id) {
            let mut all = std::mem::take(&mut file.durable);
            all.append(&mut file.pending);
            if let Some(byte) = all.get_mut(usize::try_from(offset_bytes).unwrap_or(usize::MAX)) {
                *byte ^= 1 << (bit % 8);
            }
            file.durable = all;
        }
    }

    /// A file's full current contents, synced or not.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let file = state.files.get(state.entries.get(path)?)?;
        let mut all = file.durable.clone();
        all.extend_from_slice(&file.pending);
        Some(all)
    }

    fn not_found(path: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", path.display()),
        )
    }
}

impl AppendFile for SimAppend {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.fail_writes {
            return Err(io::Error::new(kind, "simulated write failure"));
        }
        let file = state
            .files
            .get_mut(&self.id)
            .ok_or_else(|| io::Error::other("file removed"))?;
        file.pending.extend_from_slice(bytes);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.fail_writes {
            return Err(io::Error::new(kind, "simulated sync failure"));
        }
        let file = state
            .files
            .get_mut(&self.id)
            .ok_or_else(|| io::Error::other("file removed"))?;
        let mut pending = std::mem::take(&mut file.pending);
        file.durable.append(&mut pending);
        Ok(())
    }

    fn len_bytes(&self) -> u64 {
        let state = self.state.lock();
        state
            .files
            .get(&self.id)
            .map_or(0, |f| (f.durable.len() + f.pending.len()) as u64)
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        Ok(state
            .entries
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.contents(path).ok_or_else(|| Self::not_found(path))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut state = self.state.lock();
        let id = match state.entries.get(path) {
            Some(id) => *id,
            None => {
                if let Some(kind) = state.fail_writes {
                    return Err(io::Error::new(kind, "simulated create failure"));
                }
                let id = state.next_id;
                state.next_id += 1;
                state.files.insert(id, SimFile::default());
                state.entries.insert(path.to_path_buf(), id);
                id
            }
        };
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            id,
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut state = self.state.lock();
        if let Some(kind) = state.fail_writes {
            return Err(io::Error::new(kind, "simulated create failure"));
        }
        let id = state.next_id;
        state.next_id += 1;
        state.files.insert(id, SimFile::default());
        state.entries.insert(path.to_path_buf(), id);
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            id,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let id = state
            .entries
            .remove(from)
            .ok_or_else(|| Self::not_found(from))?;
        state.entries.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state
            .entries
            .remove(path)
            .ok_or_else(|| Self::not_found(path))?;
        Ok(())
    }

    fn truncate(&self, path: &Path, len_bytes: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        let id = *state
            .entries
            .get(path)
            .ok_or_else(|| Self::not_found(path))?;
        let file = state
            .files
            .get_mut(&id)
            .ok_or_else(|| Self::not_found(path))?;
        let mut all = std::mem::take(&mut file.durable);
        all.append(&mut file.pending);
        all.truncate(usize::try_from(len_bytes).unwrap_or(usize::MAX));
        file.durable = all;
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let in_dir = |path: &PathBuf| path.parent() == Some(dir);
        let current: Vec<(PathBuf, u64)> = state
            .entries
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, id)| (p.clone(), *id))
            .collect();
        state.durable_entries.retain(|path, _| !in_dir(path));
        state.durable_entries.extend(current);
        Ok(())
    }
}
