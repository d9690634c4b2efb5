//! TLS for the HTTP port and the dedicated wire port (`tls_cert_file`, `tls_key_file`,
//! optionally `tls_client_ca_file`): the PEM files loaded into a rustls configuration, and
//! its reloads without a restart.
//!
//! Every new connection's handshake takes the configuration current at its accept
//! ([`Tls::acceptor`]); a reload swaps in a new one for the connections that come after it, so
//! handshakes in progress and open connections keep theirs. A reload happens when the files'
//! contents change (read every `tls_reload_interval_ms`) and on SIGHUP; one that fails (bad
//! PEM, a key that does not fit the certificate, a file half-written) logs an error and keeps
//! the configuration in use. The same files that failed are not tried again until they change
//! (or SIGHUP asks), so a bad file is reported once, not at every poll.
//!
//! The crypto provider is always named (ring, the one reqwest already brings), never the
//! process default: a build with another provider enabled too cannot make rustls guess.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The ALPN protocols the HTTP port offers, most preferred first.
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the PEM files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Client certificates must be signed by one of these CAs (none: no client certificate
    /// is asked for).
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files cannot be used; `key` names the setting whose file is at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid PEM: {reason}", path.display())]
    Pem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{} holds no {what}", path.display())]
    Missing {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{}: {reason}", path.display())]
    Rejected {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
}

impl TlsError {
    /// The configuration key of the file at fault.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. }
            | TlsError::Pem { key, .. }
            | TlsError::Missing { key, .. }
            | TlsError::Rejected { key, .. } => key,
        }
    }
}

/// The files' bytes as last read, to tell whether they changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The TLS configuration in use and what it was built from.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<rustls::ServerConfig>>,
    /// The contents last tried, whether the reload succeeded or not.
    tried: Mutex<Contents>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
    /// The files did not change since they were last tried.
    Unchanged,
    /// A new configuration is in use.
    Reloaded,
}

impl Tls {
    /// Loads the files; an error names the file at fault.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let contents = read(&files)?;
        let config = build(&files, &contents)?;
        Ok(Tls {
            files,
            current: RwLock::new(config),
            tried: Mutex::new(contents),
        })
    }

    /// Checks that the files make a configuration, as start-up would (config validation).
    pub fn check(files: &TlsFiles) -> Result<(), TlsError> {
        build(files, &read(files)?).map(|_| ())
    }

    /// The acceptor for a new connection: the configuration current now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().clone())
    }

    /// Reads the files again and, if they changed since last tried (or `forced`), builds and
    /// swaps in a new configuration. On an error the configuration in use stays.
    pub fn reload(&self, forced: bool) -> Result<Reload, TlsError> {
        let contents = read(&self.files)?;
        {
            let mut tried = self.tried.lock();
            if !forced && *tried == contents {
                return Ok(Reload::Unchanged);
            }
            *tried = contents.clone();
        }
        let config = build(&self.files, &contents)?;
        *self.current.write() = config;
        Ok(Reload::Reloaded)
    }

    /// Reloads every `interval` when the files changed (never when `interval` is zero) and on
    /// every SIGHUP, until `stop`.
    pub async fn run_reloads(self: Arc<Self>, interval: Duration, stop: CancellationToken) {
        let mut hangups = hangups();
        let mut ticker = (!interval.is_zero()).then(|| {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        loop {
            let forced = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick(&mut ticker) => false,
                got = hangup(&mut hangups) => {
                    if !got {
                        hangups = None;
                        continue;
                    }
                    true
                }
            };
            match self.reload(forced) {
                Ok(Reload::Unchanged) => {}
                Ok(Reload::Reloaded) => tracing::info!(
                    cert = %self.files.cert.display(),
                    sighup = forced,
                    "TLS certificate reloaded; new connections use it"
                ),
                Err(error) => tracing::error!(
                    %error,
                    key = error.key(),
                    "TLS reload failed; the certificate in use stays"
                ),
            }
        }
    }
}

async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; TLS files are reloaded by polling only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP (true), or false once no more can come; pending without a handler.
#[cfg(unix)]
async fn hangup(hangups: &mut Hangups) -> bool {
    match hangups {
        Some(signal) => signal.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn hangup(_: &mut Hangups) -> bool {
    std::future::pending().await
}

fn read(files: &TlsFiles) -> Result<Contents, TlsError> {
    let read_file = |key: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            key,
            path: path.to_path_buf(),
            source,
        })
    };
    Ok(Contents {
        cert: read_file("tls_cert_file", &files.cert)?,
        key: read_file("tls_key_file", &files.key)?,
        client_ca: match &files.client_ca {
            Some(path) => Some(read_file("tls_client_ca_file", path)?),
            None => None,
        },
    })
}

/// The certificates of a PEM file (at least one).
fn certificates(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            key,
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            key,
            path: path.to_path_buf(),
            what: "certificate (a `-----BEGIN CERTIFICATE-----` block)",
        });
    }
    Ok(certs)
}

fn build(files: &TlsFiles, contents: &Contents) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs = certificates("tls_cert_file", &files.cert, &contents.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing {
            key: "tls_key_file",
            path: files.key.clone(),
            what: "private key (a `-----BEGIN PRIVATE KEY-----`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
        },
        other => TlsError::Pem {
            key: "tls_key_file",
            path: files.key.clone(),
            reason: other.to_string(),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Rejected {
            key: "tls_cert_file",
            path: files.cert.clone(),
            reason: error.to_string(),
        })?;
    let builder = match (&files.client_ca, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates("tls_client_ca_file", path, pem)? {
                roots.add(cert).map_err(|error| TlsError::Rejected {
                    key: "tls_client_ca_file",
                    path: path.clone(),
                    reason: format!("not a usable CA certificate: {error}"),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| TlsError::Rejected {
                    key: "tls_client_ca_file",
                    path: path.clone(),
                    reason: error.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|error| TlsError::Rejected {
            key: "tls_key_file",
            path: files.key.clone(),
            reason: format!("does not fit the certificate of tls_cert_file: {error}"),
        })?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn files(dir: &Path) -> (TlsFiles, rcgen::CertifiedKey<rcgen::KeyPair>) {
        let pair =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        let files = TlsFiles {
            cert: write(dir, "cert.pem", &pair.cert.pem()),
            key: write(dir, "key.pem", &pair.signing_key.serialize_pem()),
            client_ca: None,
        };
        (files, pair)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("baton-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn errors_name_the_file_at_fault() {
        let dir = temp_dir("errors");
        let (good, _) = files(&dir);
        assert!(Tls::check(&good).is_ok());
        let missing = TlsFiles {
            key: dir.join("absent.pem"),
            ..good.clone()
        };
        let error = Tls::check(&missing).expect_err("no key file");
        assert!(matches!(
            error,
            TlsError::Read {
                key: "tls_key_file",
                ..
            }
        ));
        let garbage = TlsFiles {
            cert: write(&dir, "garbage.pem", "not a certificate\n"),
            ..good.clone()
        };
        let error = Tls::check(&garbage).expect_err("no certificate");
        assert!(
            matches!(
                error,
                TlsError::Missing {
                    key: "tls_cert_file",
                    ..
                }
            ),
            "{error}"
        );
        let (other, _) = files(&temp_dir("errors-other"));
        let mismatched = TlsFiles {
            key: other.key,
            ..good.clone()
        };
        let error = Tls::check(&mismatched).expect_err("key of another certificate");
        assert!(
            matches!(
                error,
                TlsError::Rejected {
                    key: "tls_key_file",
                    ..
                }
            ),
            "{error}"
        );
        let bad_ca = TlsFiles {
            client_ca: Some(write(&dir, "ca.pem", "")),
            ..good
        };
        let error = Tls::check(&bad_ca).expect_err("empty CA file");
        assert!(
            matches!(
                error,
                TlsError::Missing {
                    key: "tls_client_ca_file",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn a_failed_reload_keeps_the_configuration_and_is_tried_once() {
        let dir = temp_dir("reload");
        let (files, _) = files(&dir);
        let tls = Tls::load(files.clone()).expect("loads");
        assert_eq!(tls.reload(false).expect("same files"), Reload::Unchanged);
        let before = tls.current.read().clone();
        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nAAAA\n").expect("write");
        assert!(tls.reload(false).is_err());
        assert!(
            Arc::ptr_eq(&before, &tls.current.read()),
            "the old configuration stays"
        );
        assert_eq!(tls.reload(false).expect("tried already"), Reload::Unchanged);
        let pair =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        std::fs::write(&files.cert, pair.cert.pem()).expect("write");
        std::fs::write(&files.key, pair.signing_key.serialize_pem()).expect("write");
        assert_eq!(tls.reload(false).expect("new files"), Reload::Reloaded);
        assert!(!Arc::ptr_eq(&before, &tls.current.read()));
        assert_eq!(tls.reload(true).expect("forced"), Reload::Reloaded);
    }
}
