//! `baton key ...`: shapes and help texts.

use std::path::PathBuf;

use baton_sdk::proto::{KeyAction, KeyPermission};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key; prints it as JSON with its secret `key`, shown only this once.
    #[command(
        long_about = "Create an API key; prints it as JSON with its secret `key`, shown only \
        this once (the broker keeps only its hash).\n\n\
        Against a running broker (--url) this needs a key with `admin` on keys (--key). With \
        --data-dir it works offline on a stopped broker's data directory instead, so the first \
        admin key exists before the broker listens anywhere. Once any key exists, every request \
        to the native API needs one (`Authorization: Bearer <key>`).",
        after_help = "Examples:\n  \
        baton key create --data-dir ./baton-data --name admin --admin\n  \
        baton key create --name orders-app --allow send,receive:queue:orders*\n  \
        baton key create --name ci --allow manage:queue:* --allow send:topic:deploys --expires-at 2030-01-01T00:00:00Z"
    )]
    Create(KeyCreateArgs),

    /// List the keys (names, permissions, expiry; never secrets).
    #[command(
        after_help = "Examples:\n  baton key list\n  baton key list --table\n  baton key list --data-dir ./baton-data"
    )]
    List(KeyListArgs),

    /// Show one key (no secret).
    #[command(after_help = "Example:\n  baton key show orders-app")]
    Show(KeyNameArg),

    /// Revoke a key at once. The last key with `admin` on keys cannot be revoked.
    #[command(after_help = "Example:\n  baton key revoke orders-app")]
    Revoke(KeyNameArg),
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// The key's name: 1 to 69 characters of A-Z, a-z, 0-9, `-` and `_`.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Every action on every resource (`send,receive,manage,admin:*`).
    #[arg(long)]
    pub admin: bool,
    /// A permission: `<actions>:<resource pattern>`, actions comma-separated from send,
    /// receive, manage, admin; patterns like `queue:orders*`, `stream:chat`, `topic:*`, `*`.
    /// Repeatable.
    #[arg(long = "allow", value_name = "ACTIONS:RESOURCE", value_parser = parse_allow)]
    pub allow: Vec<KeyPermission>,
    /// When the key stops working: milliseconds since the epoch or RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = crate::time::parse_time)]
    pub expires_at: Option<u64>,
    /// Also give the key SQS credentials (`access_key_id`, `secret_access_key`, printed once)
    /// for AWS SDKs and the aws CLI, which sign with AWS Signature Version 4.
    #[arg(long)]
    pub sqs: bool,
    /// Work offline on this (stopped) broker's data directory instead of over --url.
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeyListArgs {
    /// Print a table instead of JSON.
    #[arg(long)]
    pub table: bool,
    /// Read a stopped broker's data directory instead of asking --url.
    #[arg(long, value_name = "PATH")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct KeyNameArg {
    /// The key's name.
    pub name: String,
}

/// `send,receive:queue:orders*` → send and receive on `queue:orders*`.
pub fn parse_allow(raw: &str) -> Result<KeyPermission, String> {
    let (actions, resource) = raw.split_once(':').ok_or_else(|| {
        format!("{raw:?} is not `<actions>:<resource>`, e.g. `send,receive:queue:orders*`")
    })?;
    let actions = actions
        .split(',')
        .map(|action| match action.trim() {
            "send" => Ok(KeyAction::Send),
            "receive" => Ok(KeyAction::Receive),
            "manage" => Ok(KeyAction::Manage),
            "admin" => Ok(KeyAction::Admin),
            other => Err(format!(
                "unknown action {other:?} in {raw:?}: use send, receive, manage or admin"
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if resource.is_empty() {
        return Err(format!("{raw:?} names no resource after `:`"));
    }
    Ok(KeyPermission {
        actions,
        resources: vec![resource.to_string()],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn allow_parses_actions_and_resource() {
        let p = parse_allow("send,receive:queue:orders*").unwrap();
        assert_eq!(p.actions, vec![KeyAction::Send, KeyAction::Receive]);
        assert_eq!(p.resources, vec!["queue:orders*".to_string()]);
        assert_eq!(
            parse_allow("admin:*").unwrap().resources,
            vec!["*".to_string()]
        );
        assert!(parse_allow("send").is_err());
        assert!(parse_allow("fly:queue:x").is_err());
        assert!(parse_allow("send:").is_err());
    }
}
