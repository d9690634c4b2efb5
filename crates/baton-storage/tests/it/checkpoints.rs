use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use baton_storage::checkpoint;
use baton_storage::io::AppendFile;
use baton_storage::wal as wal_mod;
use baton_storage::{CrashMode, DataDirLock, FileSystem, LockError, SimFs};

use crate::*;

type Frames = Vec<(u8, Vec<u8>)>;

fn load(fs: &SimFs) -> Option<(u64, Frames)> {
    let mut frames = Vec::new();
    let lsn = checkpoint::load_newest(fs, &dir(), |kind, payload| {
        frames.push((kind, payload.to_vec()));
        Ok(())
    })
    .unwrap()?;
    Some((lsn, frames))
}

fn state(n: u64) -> Vec<(u8, Vec<u8>)> {
    (0..n).map(|i| (1u8, payload(i))).collect()
}

#[tokio::test]
async fn checkpoint_round_trips_and_removes_covered_segments() {
    let fs = SimFs::new();
    write_records(&fs, 60, 256).await;
    let before = wal_mod::list_segments(&fs, &dir()).unwrap().len();
    checkpoint::write(&fs, &dir(), 40, state(3)).unwrap();
    let (lsn, frames) = load(&fs).unwrap();
    assert_eq!((lsn, frames), (40, state(3)));
    checkpoint::remove_covered(&fs, &dir(), 40).unwrap();
    let after = wal_mod::list_segments(&fs, &dir()).unwrap();
    assert!(after.len() < before);
    // Every record after the checkpoint is still readable.
    let (records, end) = read_all(&fs, 41).unwrap();
    assert_eq!(records.first().unwrap().0, 41);
    assert_eq!(end.next_lsn, 61);
}

/// Fails (and "loses power") at the `budget`-th mutating call.
struct CrashingFs {
    inner: SimFs,
    budget: AtomicI64,
}

impl CrashingFs {
    fn spend(&self) -> io::Result<()> {
        if self.budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.inner.crash(CrashMode::LoseUnsynced);
            return Err(io::Error::other("power loss"));
        }
        Ok(())
    }
}

struct CrashingFile<'a> {
    fs: &'a CrashingFs,
    file: Box<dyn AppendFile>,
}

impl AppendFile for CrashingFile<'_> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.fs.spend()?;
        self.file.append(bytes)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.fs.spend()?;
        self.file.sync()
    }
    fn len_bytes(&self) -> u64 {
        self.file.len_bytes()
    }
    fn prepare(&mut self, upto_bytes: u64) -> io::Result<()> {
        self.fs.spend()?;
        self.file.prepare(upto_bytes)
    }
}

/// Runs `checkpoint::write` + `remove_covered` by hand on a `CrashingFs` (it is not 'static,
/// so it drives the steps through the same calls the real code makes).
fn checkpoint_with_crash_at(fs: &SimFs, budget: i64) -> io::Result<()> {
    let crashing = CrashingFs {
        inner: fs.clone(),
        budget: AtomicI64::new(budget),
    };
    struct View<'a>(&'a CrashingFs);
    impl FileSystem for View<'static> {
        fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
            self.0.inner.create_dir_all(dir)
        }
        fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
            self.0.inner.list(dir)
        }
        fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
            self.0.inner.read(path)
        }
        fn open_at(&self, path: &Path, position: u64) -> io::Result<Box<dyn AppendFile>> {
            self.0.spend()?;
            Ok(Box::new(CrashingFile {
                fs: self.0,
                file: self.0.inner.open_at(path, position)?,
            }))
        }
        fn create(&self, path: &Path) -> io::Result<Box<dyn AppendFile>> {
            self.0.spend()?;
            Ok(Box::new(CrashingFile {
                fs: self.0,
                file: self.0.inner.create(path)?,
            }))
        }
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.0.spend()?;
            self.0.inner.rename(from, to)
        }
        fn remove(&self, path: &Path) -> io::Result<()> {
            self.0.spend()?;
            self.0.inner.remove(path)
        }
        fn truncate(&self, path: &Path, len_bytes: u64) -> io::Result<()> {
            self.0.spend()?;
            self.0.inner.truncate(path, len_bytes)
        }
        fn sync_dir(&self, dir: &Path) -> io::Result<()> {
            self.0.spend()?;
            self.0.inner.sync_dir(dir)
        }
        fn file_len(&self, path: &Path) -> io::Result<u64> {
            self.0.inner.file_len(path)
        }
        fn free_bytes(&self, dir: &Path) -> io::Result<u64> {
            self.0.inner.free_bytes(dir)
        }
    }
    // Leak one small struct per attempt so the view can be 'static; bounded by the test loop.
    let crashing: &'static CrashingFs = Box::leak(Box::new(crashing));
    let view = View(crashing);
    checkpoint::write(&view, &dir(), 40, state(3))?;
    checkpoint::remove_covered(&view, &dir(), 40)?;
    Ok(())
}

#[tokio::test]
async fn a_checkpoint_interrupted_at_any_step_loses_nothing() {
    let mut completed = false;
    for budget in 0..40 {
        let fs = SimFs::new();
        write_records(&fs, 60, 256).await;
        let result = checkpoint_with_crash_at(&fs, budget);
        // Whatever happened, recovery sees either no checkpoint and the whole log, or the
        // checkpoint and every record after it.
        let (from, expect_state) = match load(&fs) {
            Some((lsn, frames)) => {
                assert_eq!((lsn, frames), (40, state(3)), "budget {budget}");
                (41, true)
            }
            None => (1, false),
        };
        let (records, end) = read_all(&fs, from).unwrap();
        assert_eq!(end.next_lsn, 61, "budget {budget}: no record lost");
        assert_eq!(records.len() as u64, 61 - from, "budget {budget}");
        if result.is_ok() {
            assert!(expect_state);
            completed = true;
            break;
        }
    }
    assert!(completed, "the checkpoint completes with enough budget");
}

#[test]
fn a_data_dir_can_be_locked_by_one_holder_only() {
    let dir = std::env::temp_dir().join(format!("baton-lock-test-{}", std::process::id()));
    let first = DataDirLock::acquire(&dir).unwrap();
    assert!(matches!(
        DataDirLock::acquire(&dir),
        Err(LockError::InUse { .. })
    ));
    drop(first);
    let _again = DataDirLock::acquire(&dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = Arc::new(());
}
