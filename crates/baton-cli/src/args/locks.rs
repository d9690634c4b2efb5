//! `baton lock ...`: shapes and help texts.

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Acquire a lock for a holder; prints the hold (with its fencing token) as JSON.
    #[command(
        long_about = "Acquire a lock for a holder; prints the hold (with its fencing token) as \
        JSON.\n\n\
        While someone else holds it, waits up to --wait-ms for a release or the expiry, then \
        fails with `lock_held` (exit status 1) naming the holder and the expiry. Every grant \
        of a name has a larger token than any before it: pass the token on to what the job \
        writes to, so a holder that lost the lock cannot act on it.",
        after_help = "Examples:\n  \
        baton lock acquire cleanup.daily --holder \"$(hostname)-$$\" --ttl-ms 600000\n  \
        baton lock acquire order:42 --holder worker-1 --ttl-ms 30000 --wait-ms 10000"
    )]
    Acquire(LockAcquireArgs),

    /// Extend a hold: it expires --ttl-ms from now.
    #[command(
        after_help = "Example:\n  baton lock renew order:42 --holder worker-1 --token 7 --ttl-ms 30000"
    )]
    Renew(LockRenewArgs),

    /// Release a hold; prints {"released": true}, or false when it had already ended.
    #[command(after_help = "Example:\n  baton lock release order:42 --holder worker-1 --token 7")]
    Release(LockTokenArgs),

    /// Show who holds a lock; fails with `lock_not_found` when nobody does.
    #[command(
        after_help = "Examples:\n  baton lock show order:42\n  baton lock show order:42 --table"
    )]
    Show(LockShowArgs),

    /// List the held locks, by name prefix.
    #[command(
        after_help = "Examples:\n  baton lock list\n  baton lock list --prefix order: --table"
    )]
    List(LockListArgs),
}

#[derive(Debug, Args)]
pub struct LockAcquireArgs {
    /// The lock's name: characters of A-Z a-z 0-9 _ . : -
    pub name: String,

    /// Who holds it: unique per process (a host name and a process id, say).
    #[arg(long)]
    pub holder: String,

    /// How long the hold lasts unless renewed.
    #[arg(long, value_name = "MS")]
    pub ttl_ms: u64,

    /// How long to wait for the lock to come free [default: 0, answer at once].
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub wait_ms: u64,
}

#[derive(Debug, Args)]
pub struct LockRenewArgs {
    #[command(flatten)]
    pub hold: LockTokenArgs,

    /// The new TTL, from now.
    #[arg(long, value_name = "MS")]
    pub ttl_ms: u64,
}

#[derive(Debug, Args)]
pub struct LockTokenArgs {
    /// The lock's name.
    pub name: String,

    /// The holder that acquired it.
    #[arg(long)]
    pub holder: String,

    /// The token the acquire printed.
    #[arg(long)]
    pub token: u64,
}

#[derive(Debug, Args)]
pub struct LockShowArgs {
    /// The lock's name.
    pub name: String,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct LockListArgs {
    /// Only locks whose names start with this.
    #[arg(long, default_value = "")]
    pub prefix: String,

    /// Start after this name (the `next_after` of a previous page).
    #[arg(long)]
    pub after: Option<String>,

    /// Most locks to list, 1..=1000.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max: u32,

    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}
