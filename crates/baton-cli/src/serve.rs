//! `baton serve`: configuration, logging, the listening socket and signals around
//! `baton_server::run`.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use baton_server::ServerConfig;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::args::{LogFormat, ServeArgs};

/// Log filter when `RUST_LOG` is unset or invalid.
const LOG_FILTER_DEFAULT: &str = "info";

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing(args.log_format);

    // `std::env::vars` panics on a variable that is not UTF-8; such variables cannot be ours.
    let env = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)));
    let mut config =
        ServerConfig::load(args.config.as_deref(), env).context("cannot load the configuration")?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(wire_listen) = args.wire_listen {
        config.wire_listen = wire_listen;
    }
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(engine) = args.engine {
        config.engine = engine
            .parse()
            .map_err(|reason| anyhow::anyhow!("--engine {reason}"))?;
    }
    if let Some(url) = args.redis_url {
        config.redis_url = url;
    }
    if let Some(namespace) = args.redis_namespace {
        config.redis_namespace = namespace;
    }
    if let Some(replicas) = args.redis_wait_replicas {
        config.redis_wait_replicas = replicas;
    }
    if let Some(timeout) = args.redis_wait_timeout_ms {
        config.redis_wait_timeout_ms = timeout;
    }
    if let Some(durability) = args.redis_durability {
        config.redis_durability = durability
            .parse()
            .map_err(|reason| anyhow::anyhow!("--redis-durability {reason}"))?;
    }
    if let Some(fsync) = args.fsync {
        config.fsync = fsync;
    }
    if args.repair {
        config.repair = true;
    }
    if args.insecure {
        config.insecure = true;
    }
    if let Some(path) = args.tls_cert_file {
        config.tls_cert_file = Some(path);
    }
    if let Some(path) = args.tls_key_file {
        config.tls_key_file = Some(path);
    }
    if let Some(path) = args.tls_client_ca_file {
        config.tls_client_ca_file = Some(path);
    }
    if let Some(path) = args.encryption_key_file {
        config.encryption_key_file = Some(path);
    }
    config.validate().context("invalid configuration")?;

    let listener = TcpListener::bind(config.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let local_addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // From the configured address, not the bound one: with `--listen host:0`, `auto` picks a
    // free wire port too, as documented (the bound HTTP port + 1 may belong to someone else,
    // which made a crash-test restart fail once).
    let wire = match config.wire_addr(config.listen_addr()?)? {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (wire_listen)"))?,
        ),
        None => None,
    };

    // Tests and scripts read this line to learn the port when `--listen` ends in `:0`, so it
    // is printed once, exactly so, and flushed at once (stdout is block-buffered in a pipe).
    let mut stdout = std::io::stdout().lock();
    let scheme = if config.tls_files().is_some() {
        "https"
    } else {
        "http"
    };
    writeln!(stdout, "baton listening on {scheme}://{local_addr}")
        .context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);
    tracing::info!(listen = %local_addr, data_dir = %config.data_dir.display(), "baton starting");

    let shutdown = shutdown_signal().context("cannot install signal handlers")?;
    baton_server::run(config, listener, wire, shutdown)
        .await
        .context("server failed")?;
    tracing::info!("baton stopped");
    Ok(())
}

/// Logs to stderr, keeping stdout for the one "listening on" line.
fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LOG_FILTER_DEFAULT));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // `try_init` fails only if a subscriber is already set, which leaves logging working.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM; a second one ends the process at once,
/// without waiting for the graceful shutdown. The handlers are installed now, before the
/// server starts, so a signal that arrives early is not lost.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT, shutting down; send it again to stop at once"),
            _ = terminate.recv() => tracing::info!("received SIGTERM, shutting down; send it again to stop at once"),
        }
        // Not tracked: it lives until the process exits, which is its whole purpose.
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("error: second signal, stopping without a graceful shutdown");
            std::process::exit(130);
        });
    })
}

/// Completes on the first Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    Ok(async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("received Ctrl-C, shutting down"),
            Err(error) => {
                tracing::warn!(%error, "cannot listen for Ctrl-C; the server runs until killed");
                std::future::pending::<()>().await;
            }
        }
    })
}

/// `baton storage verify`: prints the report as JSON, fails with the recovery error, or,
/// when the log has a gap, prints what is missing and what survives and fails.
pub fn verify(args: crate::args::VerifyArgs) -> anyhow::Result<()> {
    let keys = args
        .encryption_key_file
        .as_deref()
        .map(baton_storage::Keyring::load)
        .transpose()?;
    let scan = baton_server::scan_storage_encryption(&args.data_dir, keys.as_ref())
        .with_context(|| format!("cannot read data dir {}", args.data_dir.display()))?;
    let encryption = encryption_json(&scan);
    if scan.undecryptable_frames > 0 {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "data_dir": args.data_dir.display().to_string(),
                "encryption": encryption,
                "ok": false,
            }))
            .context("cannot print the report")?
        );
        let ids: std::collections::BTreeSet<u32> = scan
            .undecryptable
            .iter()
            .filter_map(|frame| frame.error.key_id())
            .collect();
        anyhow::bail!(
            "{} frames of {} cannot be decrypted{} (key ids {ids:?}); a start refuses them. \
             Give the key file that holds those keys with --encryption-key-file",
            scan.undecryptable_frames,
            args.data_dir.display(),
            match &args.encryption_key_file {
                Some(path) => format!(" with the keys of {}", path.display()),
                None => " without a key file".to_string(),
            },
        );
    }
    let report =
        baton_server::verify_storage(&args.data_dir, keys.as_ref()).with_context(|| {
            format!(
                "data dir {} cannot be recovered as it is",
                args.data_dir.display()
            )
        })?;
    let gap = report.gap.as_ref().map(|gap| {
        serde_json::json!({
            "missing_from_record": gap.missing_from,
            "resumes_at_record": gap.resumes_at,
            "segments_after_gap": gap.segments_after.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "records_after_gap": gap.records_after,
        })
    });
    let json = serde_json::json!({
        "data_dir": args.data_dir.display().to_string(),
        "checkpoint_lsn": report.checkpoint_lsn,
        "records_after_checkpoint": report.records,
        "next_lsn": report.next_lsn,
        "torn_tail_bytes": report.torn_tail_bytes,
        "queues": report.queues,
        "messages": report.messages,
        "gap": gap,
        "encryption": encryption,
        "ok": report.gap.is_none(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&json).context("cannot print the report")?
    );
    if let Some(gap) = &report.gap {
        anyhow::bail!(
            "the log of {} is missing records {}..{} (a segment is gone): a start refuses it. \
             The {} queues and {} messages above survive up to the gap; `baton serve --repair` \
             starts with them and moves the {} segments after the gap ({} records) to wal/{}/",
            args.data_dir.display(),
            gap.missing_from,
            gap.resumes_at.saturating_sub(1),
            report.queues,
            report.messages,
            gap.segments_after.len(),
            gap.records_after,
            baton_server::LOG_DROPPED_DIR,
        );
    }
    Ok(())
}

/// The encryption part of `baton storage verify`'s report.
fn encryption_json(scan: &baton_storage::SealScan) -> serde_json::Value {
    let sealed: serde_json::Map<String, serde_json::Value> = scan
        .sealed_frames
        .iter()
        .map(|(id, n)| (id.to_string(), serde_json::json!(n)))
        .collect();
    let undecryptable: Vec<serde_json::Value> = scan
        .undecryptable
        .iter()
        .map(|frame| {
            serde_json::json!({
                "file": frame.path.display().to_string(),
                "offset_bytes": frame.offset_bytes,
                "key_id": frame.error.key_id(),
                "reason": frame.error.to_string(),
            })
        })
        .collect();
    serde_json::json!({
        "files": scan.files,
        "plain_frames": scan.plain_frames,
        "sealed_frames_by_key": sealed,
        "undecryptable_frames": scan.undecryptable_frames,
        "undecryptable": undecryptable,
    })
}

/// `baton storage keygen`: appends a new key to the key file, creating it with mode 600.
pub fn keygen(args: crate::args::KeygenArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let path = &args.key_file;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let (id, line) = baton_storage::seal::new_key_line(&existing)
        .with_context(|| format!("{} is not a valid key file", path.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let separator = if existing.is_empty() || existing.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    file.write_all(format!("{separator}{line}").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "added key {id} to {}: it encrypts from the broker's next start; keep a copy of the file, data encrypted under it cannot be read without it",
        path.display()
    );
    println!(
        "{}",
        serde_json::json!({"key_file": path.display().to_string(), "key_id": id})
    );
    Ok(())
}
