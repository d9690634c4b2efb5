//! The one seam between Baton's storage and the file system.
//!
//! Everything the WAL and checkpoints do to disk goes through [`FileSystem`], so tests can
//! swap the real disk ([`RealFs`]) for [`SimFs`], a simulated disk that models what survives a
//! power loss: file contents that were synced, directory entries whose directory was synced,
//! and optionally a torn prefix of the last unsynced write. Tests then run thousands of seeded
//! crash-and-recover schedules in process.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

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
}

/// How much of unsynced data survives a simulated crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced byte is lost.
    LoseUnsynced,
    /// Of each file's unsynced bytes, the first `keep_bytes` survive (a torn write).
    Torn { keep_bytes: u64 },
}

/// One simulated file: what a reader sees now, what survives power loss, and the writes in
/// between (in order, so a crash can keep a torn prefix of them).
#[derive(Debug, Default, Clone)]
struct SimFile {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<(usize, Vec<u8>)>,
}

fn write_into(data: &mut Vec<u8>, offset: usize, bytes: &[u8]) {
    let end = offset + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    if let Some(target) = data.get_mut(offset..end) {
        target.copy_from_slice(bytes);
    }
}

impl SimFile {
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        write_into(&mut self.current, offset, bytes);
        self.unsynced.push((offset, bytes.to_vec()));
    }

    fn sync(&mut self) {
        for (offset, bytes) in std::mem::take(&mut self.unsynced) {
            write_into(&mut self.durable, offset, &bytes);
        }
    }

    /// Power loss: only the durable contents remain, plus the first `keep_bytes` of the
    /// unsynced writes.
    fn crash(&mut self, keep_bytes: usize) {
        let mut left = keep_bytes;
        for (offset, bytes) in std::mem::take(&mut self.unsynced) {
            if left == 0 {
                break;
            }
            let n = bytes.len().min(left);
            write_into(
                &mut self.durable,
                offset,
                bytes.get(..n).unwrap_or_default(),
            );
            left -= n;
        }
        self.current = self.durable.clone();
    }

    fn truncate(&mut self, len: usize) {
        self.sync();
        self.current.truncate(len);
        self.durable.truncate(len);
    }
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
    position: usize,
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
        let keep = match mode {
            CrashMode::LoseUnsynced => 0,
            CrashMode::Torn { keep_bytes } => usize::try_from(keep_bytes).unwrap_or(usize::MAX),
        };
        for file in state.files.values_mut() {
            file.crash(keep);
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

    /// Flips one bit of a file, durably.
    pub fn flip_bit(&self, path: &Path, offset_bytes: u64, bit: u8) {
        let mut state = self.state.lock();
        let Some(id) = state.entries.get(path).copied() else {
            return;
        };
        if let Some(file) = state.files.get_mut(&id) {
            file.sync();
            let offset = usize::try_from(offset_bytes).unwrap_or(usize::MAX);
            for data in [&mut file.current, &mut file.durable] {
                if let Some(byte) = data.get_mut(offset) {
                    *byte ^= 1 << (bit % 8);
                }
            }
        }
    }

    /// A file's full current contents, synced or not.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state.lock();
        Some(state.files.get(state.entries.get(path)?)?.current.clone())
    }

    fn not_found(path: &Path) -> io::Error {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} not found", path.display()),
        )
    }

    fn new_file(state: &mut SimState, path: &Path) -> u64 {
        let id = state.next_id;
        state.next_id += 1;
        state.files.insert(id, SimFile::default());
        state.entries.insert(path.to_path_buf(), id);
        id
    }
}

impl SimAppend {
    fn with_file<T>(&self, op: impl FnOnce(&mut SimFile) -> T) -> io::Result<T> {
        let mut state = self.state.lock();
        if let Some(kind) = state.fail_writes {
            return Err(io::Error::new(kind, "simulated write failure"));
        }
        let file = state
            .files
            .get_mut(&self.id)
            .ok_or_else(|| io::Error::other("file removed"))?;
        Ok(op(file))
    }
}

impl AppendFile for SimAppend {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let position = self.position;
        self.with_file(|file| file.write(position, bytes))?;
        self.position += bytes.len();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.with_file(SimFile::sync)
    }

    fn len_bytes(&self) -> u64 {
        self.position as u64
    }

    fn prepare(&mut self, upto_bytes: u64) -> io::Result<()> {
        let upto = usize::try_from(upto_bytes).unwrap_or(usize::MAX);
        self.with_file(|file| {
            let len = file.current.len();
            if len < upto {
                file.write(len, &vec![0u8; upto - len]);
            }
            file.sync();
        })
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        // Files directly in `dir`, and (as a real `read_dir` does) the directories in it that
        // hold files.
        let mut names: Vec<String> = state
            .entries
            .keys()
            .filter_map(|path| path.strip_prefix(dir).ok())
            .filter_map(|rest| rest.components().next())
            .filter_map(|first| first.as_os_str().to_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.contents(path).ok_or_else(|| Self::not_found(path))
    }

    fn open_at(&self, path: &Path, position_bytes: u64) -> io::Result<Box<dyn AppendFile>> {
        let mut state = self.state.lock();
        let id = match state.entries.get(path) {
            Some(id) => *id,
            None => {
                if let Some(kind) = state.fail_writes {
                    return Err(io::Error::new(kind, "simulated create failure"));
                }
                Self::new_file(&mut state, path)
            }
        };
        let position = usize::try_from(position_bytes).unwrap_or(usize::MAX);
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            id,
            position,
        }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
        let mut state = self.state.lock();
        if let Some(kind) = state.fail_writes {
            return Err(io::Error::new(kind, "simulated create failure"));
        }
        let id = Self::new_file(&mut state, path);
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            id,
            position: 0,
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
        file.truncate(usize::try_from(len_bytes).unwrap_or(usize::MAX));
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
