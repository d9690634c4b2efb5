//! A simulated disk for crash tests: what survives a power loss (synced contents, directory
//! entries whose directory was synced, optionally a torn prefix of unsynced writes), a capacity
//! at which writes fail with ENOSPC the way a real file system's do, and seeded random ENOSPC
//! faults at any call.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::sim_kit::sim_random;
use super::{AppendFile, FileSystem};

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

/// Seeded random ENOSPC faults: each write, zero-fill, sync, file creation, rename, directory
/// sync and removal fails with probability `1 / one_in`, independently of the capacity (a
/// failed removal stands for the clean-ups a crash cuts short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimFaults {
    pub seed: u64,
    pub one_in: u32,
}

/// The kinds of call a fault can hit, for `SimFs::faults_injected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimCall {
    Write,
    Prepare,
    Sync,
    Create,
    Rename,
    SyncDir,
    Remove,
}

#[derive(Debug, Default)]
struct SimState {
    /// Current view: path → file id.
    entries: BTreeMap<PathBuf, u64>,
    /// What a crash reverts the directory to: entries as of each directory's last sync.
    durable_entries: BTreeMap<PathBuf, u64>,
    files: BTreeMap<u64, SimFile>,
    next_id: u64,
    /// When set, every write fails with this error kind (a failed disk, or the power is off).
    fail_writes: Option<io::ErrorKind>,
    /// Bytes the disk holds; files in the current view count with their current length.
    capacity_bytes: Option<u64>,
    /// Random faults: the schedule and the splitmix64 state.
    faults: Option<(SimFaults, u64)>,
    injected: BTreeMap<SimCall, u64>,
}

fn full(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!("simulated: no space left on device ({what})"),
    )
}

impl SimState {
    fn used_bytes(&self) -> u64 {
        self.entries
            .values()
            .filter_map(|id| self.files.get(id))
            .map(|file| file.current.len() as u64)
            .sum()
    }

    fn free_bytes(&self) -> u64 {
        self.capacity_bytes.map_or(u64::MAX / 2, |capacity| {
            capacity.saturating_sub(self.used_bytes())
        })
    }

    /// The error a call of `kind` gets before it does anything: the power is off, the disk
    /// failed, or a random fault hits it.
    fn check(&mut self, call: SimCall) -> io::Result<()> {
        if let Some(kind) = self.fail_writes {
            return Err(io::Error::new(kind, "simulated write failure"));
        }
        if let Some((faults, rng)) = &mut self.faults {
            if sim_random(rng).is_multiple_of(u64::from(faults.one_in.max(1))) {
                *self.injected.entry(call).or_default() += 1;
                return Err(full(&format!("injected at {call:?}")));
            }
        }
        Ok(())
    }

    /// Creating a directory entry needs a little space.
    fn check_entry(&mut self, call: SimCall) -> io::Result<()> {
        self.check(call)?;
        if self.free_bytes() == 0 {
            return Err(full(&format!("{call:?}")));
        }
        Ok(())
    }

    /// Writes `bytes` at `offset` of file `id`, as far as the capacity allows: a write that
    /// does not fit writes what fits and fails, as a real `write` loop does.
    fn write(&mut self, id: u64, offset: usize, bytes: &[u8], call: SimCall) -> io::Result<()> {
        self.check(call)?;
        let free = self.free_bytes();
        let file = self
            .files
            .get_mut(&id)
            .ok_or_else(|| io::Error::other("file removed"))?;
        let len = file.current.len();
        let growth = (offset + bytes.len()).saturating_sub(len) as u64;
        if growth <= free {
            file.write(offset, bytes);
            return Ok(());
        }
        let fits = (len + usize::try_from(free).unwrap_or(usize::MAX)).saturating_sub(offset);
        if let Some(part) = bytes.get(..fits.min(bytes.len())).filter(|p| !p.is_empty()) {
            file.write(offset, part);
        }
        Err(full("write"))
    }

    /// A sync needs no new space: the blocks of a write that succeeded are taken at `write`
    /// time (ext4, xfs and tmpfs reserve them then), so only the random faults, which stand
    /// for file systems that allocate at writeback (NFS, thin provisioning), fail it.
    fn sync(&mut self, id: u64) -> io::Result<()> {
        self.check(SimCall::Sync)?;
        self.files
            .get_mut(&id)
            .ok_or_else(|| io::Error::other("file removed"))?
            .sync();
        Ok(())
    }
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

    /// Gives the disk a size (or none): growing files past it fails with ENOSPC.
    pub fn set_capacity(&self, capacity_bytes: Option<u64>) {
        self.state.lock().capacity_bytes = capacity_bytes;
    }

    /// Bytes the files in the current view take.
    pub fn used_bytes(&self) -> u64 {
        self.state.lock().used_bytes()
    }

    /// Starts (or with `None` stops) random ENOSPC faults.
    pub fn set_faults(&self, faults: Option<SimFaults>) {
        self.state.lock().faults = faults.map(|f| (f, f.seed));
    }

    /// How many faults were injected, per kind of call.
    pub fn faults_injected(&self) -> BTreeMap<SimCall, u64> {
        self.state.lock().injected.clone()
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

impl AppendFile for SimAppend {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let position = self.position;
        self.state
            .lock()
            .write(self.id, position, bytes, SimCall::Write)?;
        self.position += bytes.len();
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.state.lock().sync(self.id)
    }

    fn len_bytes(&self) -> u64 {
        self.position as u64
    }

    fn prepare(&mut self, upto_bytes: u64) -> io::Result<()> {
        let upto = usize::try_from(upto_bytes).unwrap_or(usize::MAX);
        let mut state = self.state.lock();
        let len = state
            .files
            .get(&self.id)
            .ok_or_else(|| io::Error::other("file removed"))?
            .current
            .len();
        if len < upto {
            state.write(self.id, len, &vec![0u8; upto - len], SimCall::Prepare)?;
        }
        state.sync(self.id)
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
                state.check_entry(SimCall::Create)?;
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
        state.check_entry(SimCall::Create)?;
        let id = Self::new_file(&mut state, path);
        Ok(Box::new(SimAppend {
            state: self.state.clone(),
            id,
            position: 0,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if !state.entries.contains_key(from) {
            return Err(Self::not_found(from));
        }
        state.check_entry(SimCall::Rename)?;
        let id = state
            .entries
            .remove(from)
            .ok_or_else(|| Self::not_found(from))?;
        state.entries.insert(to.to_path_buf(), id);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        if state.faults.is_some() {
            state.check(SimCall::Remove)?;
        }
        state
            .entries
            .remove(path)
            .ok_or_else(|| Self::not_found(path))?;
        Ok(())
    }

    fn truncate(&self, path: &Path, len_bytes: u64) -> io::Result<()> {
        let mut state = self.state.lock();
        if let Some(kind) = state.fail_writes {
            return Err(io::Error::new(kind, "simulated write failure"));
        }
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
        state.check(SimCall::SyncDir)?;
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

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.contents(path)
            .map(|c| c.len() as u64)
            .ok_or_else(|| Self::not_found(path))
    }

    fn free_bytes(&self, _dir: &Path) -> io::Result<u64> {
        Ok(self.state.lock().free_bytes())
    }
}
