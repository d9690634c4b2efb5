//! Encryption at rest in the configuration (`encryption_key_file`): its checks and the
//! keyring the embedded engine seals its frames with (`baton_storage::seal`).
//!
//! Only the embedded engine writes frames: with another engine the setting is refused, so it
//! can never look as if a Redis deployment's data were encrypted by Baton.

use std::sync::Arc;

use baton_storage::Keyring;

use super::{ConfigError, EngineKind, ServerConfig};

const KEY: &str = "encryption_key_file";

impl ServerConfig {
    /// The keyring of `encryption_key_file`, if set: read and checked on each call.
    pub fn keyring(&self) -> Result<Option<Arc<Keyring>>, ConfigError> {
        let Some(path) = self
            .encryption_key_file
            .as_ref()
            .filter(|p| !p.as_os_str().is_empty())
        else {
            return Ok(None);
        };
        if self.engine != EngineKind::Embedded {
            return Err(ConfigError::Invalid {
                key: KEY,
                reason: "encryption at rest is a setting of the embedded engine (its log, checkpoints and stream logs); with `engine = \"redis\"` use the Redis deployment's own disk encryption".to_string(),
            });
        }
        let keys = Keyring::load(path).map_err(|e| ConfigError::Invalid {
            key: KEY,
            reason: e.to_string(),
        })?;
        warn_if_readable_by_others(path);
        Ok(Some(Arc::new(keys)))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %path.display(), mode = format!("{:o}", mode & 0o777), "the encryption key file is readable by other users; `chmod 600` it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &std::path::Path) {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Removes its file when dropped.
    struct KeyFile(std::path::PathBuf);

    impl Drop for KeyFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn with_file(text: &str) -> (KeyFile, ServerConfig) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("baton-keys-{}-{n}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let dir = KeyFile(path.clone());
        let config = ServerConfig {
            encryption_key_file: Some(path),
            ..ServerConfig::default()
        };
        (dir, config)
    }

    #[test]
    fn a_key_file_gives_a_keyring_with_its_last_key_active() {
        let text = format!("1 {}\n2 {}\n", "11".repeat(32), "22".repeat(32));
        let (_dir, config) = with_file(&text);
        let keys = config.keyring().unwrap().unwrap();
        assert_eq!((keys.ids(), keys.active_id()), (vec![1, 2], 2));
        assert!(config.validate().is_ok());
        assert!(ServerConfig::default().keyring().unwrap().is_none());
    }

    #[test]
    fn bad_key_files_and_other_engines_are_refused_naming_the_key() {
        let (_dir, config) = with_file("1 not-hex\n");
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("encryption_key_file") && error.contains("line 1"),
            "{error}"
        );
        let missing = ServerConfig {
            encryption_key_file: Some("/nonexistent/keys".into()),
            ..ServerConfig::default()
        };
        let error = missing.validate().unwrap_err().to_string();
        assert!(
            error.contains("cannot read the encryption key file"),
            "{error}"
        );
        let (_dir, mut redis) = with_file(&format!("1 {}\n", "11".repeat(32)));
        redis.engine = EngineKind::Memory;
        let error = redis.keyring().unwrap_err().to_string();
        assert!(error.contains("embedded engine"), "{error}");
    }
}
