//! The data-dir lock: an exclusive advisory lock on `<data dir>/LOCK`, held for the life of the
//! process, so two brokers can never open the same data dir.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data dir {path} is in use by another baton process (lock file {lock})")]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("cannot lock data dir {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while the data dir is in use; the lock is released when dropped (or the process dies).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| LockError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(DataDirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::InUse {
                path: dir.to_path_buf(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }
}
