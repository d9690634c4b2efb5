//! # baton
//!
//! The one Baton binary. `baton serve` runs the broker (`baton-server`) in the foreground; every
//! other command is a thin client over `baton-sdk` that prints JSON on stdout.
//!
//! Exit status: 0 on success, 1 on any failure (API error, unreachable server, bad
//! configuration, port in use), 2 on a command-line usage error (from clap). Errors go to
//! stderr as one line starting with `error: `; API errors as `error: <code>: <message>`.

mod args;
mod bench;
mod client;
mod commands;
mod live;
mod output;
mod serve;
mod time;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::args::{Cli, Command};

/// mimalloc instead of the system allocator: `malloc`/`free` were about 14 % of the server's
/// CPU time in the end-to-end benchmark (docs/benchmarks.md, "Choices made by measurement" in
/// ARCHITECTURE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let url = cli.url.clone();
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Storage(args::StorageCommand::Verify(args)) => serve::verify(args),
        Command::Storage(args::StorageCommand::Keygen(args)) => serve::keygen(args),
        command => match remote(cli.url, cli.key, cli.cacert.as_deref()) {
            Err(error) => Err(error),
            Ok(remote) => match command {
                Command::Bench(args) => bench::bench(&remote, args).await,
                Command::Key(command) => commands::keys::run(&remote, command).await,
                command => client::run(&remote, command).await,
            },
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error, &url));
            ExitCode::FAILURE
        }
    }
}

/// The broker of `--url`, `--key` and `--cacert` (read here, so a missing file is named once).
fn remote(
    url: String,
    key: Option<String>,
    cacert: Option<&std::path::Path>,
) -> anyhow::Result<client::Remote> {
    let ca_pem = cacert
        .map(|path| {
            std::fs::read(path).with_context(|| format!("cannot read --cacert {}", path.display()))
        })
        .transpose()?;
    Ok(client::Remote { url, key, ca_pem })
}

/// One line for a human: the API's own code and message, or which server could not be
/// reached and why, or the whole chain of causes.
fn describe(error: &anyhow::Error, url: &str) -> String {
    let Some(sdk_error) = error.downcast_ref::<baton_sdk::Error>() else {
        return chain(error);
    };
    match sdk_error {
        baton_sdk::Error::Api { .. } => sdk_error.to_string(),
        baton_sdk::Error::Http(http_error) if http_error.is_connect() => {
            format!("cannot reach Baton at {url}: {}", root_cause(http_error))
        }
        baton_sdk::Error::Http(http_error) if http_error.is_timeout() => {
            format!(
                "no answer from Baton at {url} in time: {}",
                root_cause(http_error)
            )
        }
        _ => chain(error),
    }
}

/// The causes joined by `: `, leaving out a cause whose text its parent already includes
/// (errors that both print and return their source).
fn chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut parent = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if parent.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
        parent = cause;
    }
    text
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
