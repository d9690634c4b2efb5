//! The TLS and connection-limit settings of the configuration (`tls_*`,
//! `header_read_timeout_ms`, `idle_timeout_ms`, `max_header_*`, `max_connections*`): their
//! checks and their conversion into `tls::TlsFiles` and `connections::ConnectionSettings`.

use std::path::PathBuf;
use std::time::Duration;

use super::{check_range, ConfigError, ServerConfig};
use crate::connections::ConnectionSettings;
use crate::tls::{Tls, TlsFiles};

/// The defaults of the connection limits.
pub(super) struct Defaults {
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub max_header_bytes: u32,
    pub max_header_count: u32,
    pub max_connections: u32,
    pub max_connections_per_ip: u32,
}

pub(super) const DEFAULTS: Defaults = Defaults {
    header_read_timeout_ms: 10_000,
    idle_timeout_ms: 60_000,
    max_header_bytes: 16 * 1024,
    // hyper's own default, so the plain HTTP/1.1 path keeps its header array on the stack.
    max_header_count: crate::connections::HYPER_MAX_HEADERS,
    max_connections: 16_384,
    max_connections_per_ip: 1_024,
};

pub(super) const TLS_RELOAD_INTERVAL_MS_DEFAULT: u64 = 2_000;

/// A path setting that is set (an empty string counts as unset, as from an empty variable).
fn set(path: &Option<PathBuf>) -> Option<&PathBuf> {
    path.as_ref().filter(|path| !path.as_os_str().is_empty())
}

impl ServerConfig {
    pub(super) fn validate_connections(&self) -> Result<(), ConfigError> {
        check_range(
            "header_read_timeout_ms",
            self.header_read_timeout_ms,
            100,
            600_000,
        )?;
        check_range("idle_timeout_ms", self.idle_timeout_ms, 100, 86_400_000)?;
        check_range(
            "max_header_bytes",
            u64::from(self.max_header_bytes),
            1024,
            1 << 20,
        )?;
        check_range(
            "max_header_count",
            u64::from(self.max_header_count),
            1,
            10_000,
        )?;
        check_range(
            "max_connections",
            u64::from(self.max_connections),
            1,
            10_000_000,
        )?;
        check_range(
            "max_connections_per_ip",
            u64::from(self.max_connections_per_ip),
            1,
            u64::from(self.max_connections),
        )?;
        if self.tls_reload_interval_ms != 0 {
            check_range(
                "tls_reload_interval_ms",
                self.tls_reload_interval_ms,
                100,
                3_600_000,
            )
            .map_err(|error| match error {
                ConfigError::Invalid { key, reason } => ConfigError::Invalid {
                    key,
                    reason: format!("{reason} (or 0: reload on SIGHUP only)"),
                },
                other => other,
            })?;
        }
        let (cert, key) = (set(&self.tls_cert_file), set(&self.tls_key_file));
        let both_or_neither = |given: &'static str, missing: &'static str| ConfigError::Invalid {
            key: missing,
            reason: format!(
                "is not set, but `{given}` is: TLS needs both the certificate and its key"
            ),
        };
        match (cert, key) {
            (Some(_), None) => return Err(both_or_neither("tls_cert_file", "tls_key_file")),
            (None, Some(_)) => return Err(both_or_neither("tls_key_file", "tls_cert_file")),
            (None, None) if set(&self.tls_client_ca_file).is_some() => {
                return Err(ConfigError::Invalid {
                    key: "tls_client_ca_file",
                    reason: "needs TLS: set `tls_cert_file` and `tls_key_file` too".to_string(),
                })
            }
            _ => {}
        }
        if let Some(files) = self.tls_files() {
            Tls::check(&files).map_err(|error| ConfigError::Invalid {
                key: error.key(),
                reason: format!("cannot be used: {error}"),
            })?;
        }
        Ok(())
    }

    /// The TLS files, when TLS is on (`tls_cert_file` and `tls_key_file` set).
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: set(&self.tls_cert_file)?.clone(),
            key: set(&self.tls_key_file)?.clone(),
            client_ca: set(&self.tls_client_ca_file).cloned(),
        })
    }

    /// The connection limits and per-connection settings.
    pub fn connection_settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            max_header_bytes: self.max_header_bytes,
            max_header_count: self.max_header_count,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_key(config: &ServerConfig) -> Option<(&'static str, String)> {
        match config.validate() {
            Err(ConfigError::Invalid { key, reason }) => Some((key, reason)),
            _ => None,
        }
    }

    #[test]
    fn tls_needs_both_files_and_names_the_missing_one() {
        let cert_only = ServerConfig {
            tls_cert_file: Some("/nonexistent/cert.pem".into()),
            ..ServerConfig::default()
        };
        let (key, reason) = invalid_key(&cert_only).expect("refused");
        assert_eq!(key, "tls_key_file");
        assert!(reason.contains("`tls_cert_file` is"), "{reason}");
        let key_only = ServerConfig {
            tls_key_file: Some("/nonexistent/key.pem".into()),
            ..ServerConfig::default()
        };
        assert_eq!(invalid_key(&key_only).expect("refused").0, "tls_cert_file");
        let ca_only = ServerConfig {
            tls_client_ca_file: Some("/nonexistent/ca.pem".into()),
            ..ServerConfig::default()
        };
        assert_eq!(
            invalid_key(&ca_only).expect("refused").0,
            "tls_client_ca_file"
        );
        let unreadable = ServerConfig {
            tls_cert_file: Some("/nonexistent/cert.pem".into()),
            tls_key_file: Some("/nonexistent/key.pem".into()),
            ..ServerConfig::default()
        };
        let (key, reason) = invalid_key(&unreadable).expect("refused");
        assert_eq!(key, "tls_cert_file");
        assert!(reason.contains("/nonexistent/cert.pem"), "{reason}");
        let empty = ServerConfig {
            tls_cert_file: Some(PathBuf::new()),
            ..ServerConfig::default()
        };
        assert!(empty.validate().is_ok(), "an empty path is unset");
        assert!(empty.tls_files().is_none());
    }

    #[test]
    fn limits_have_ranges() {
        for (config, expected) in [
            (
                ServerConfig {
                    header_read_timeout_ms: 10,
                    ..ServerConfig::default()
                },
                "header_read_timeout_ms",
            ),
            (
                ServerConfig {
                    max_connections: 10,
                    max_connections_per_ip: 11,
                    ..ServerConfig::default()
                },
                "max_connections_per_ip",
            ),
            (
                ServerConfig {
                    max_header_bytes: 100,
                    ..ServerConfig::default()
                },
                "max_header_bytes",
            ),
            (
                ServerConfig {
                    tls_reload_interval_ms: 5,
                    ..ServerConfig::default()
                },
                "tls_reload_interval_ms",
            ),
        ] {
            assert_eq!(invalid_key(&config).map(|(key, _)| key), Some(expected));
        }
        let off = ServerConfig {
            tls_reload_interval_ms: 0,
            ..ServerConfig::default()
        };
        assert!(off.validate().is_ok());
    }
}
