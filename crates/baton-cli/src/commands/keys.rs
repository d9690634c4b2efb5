//! `baton key ...`: over the API of `--url`, or (`--data-dir`) offline on a stopped broker's
//! data directory, for the first admin key.

use anyhow::{bail, Context};
use baton_sdk::proto::{CreateKey, KeyInfo};
use baton_server::ServerConfig;

use crate::args::{KeyCommand, KeyCreateArgs};
use crate::output::{or_dash, print_json, print_table};

pub async fn run(remote: &crate::client::Remote, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create(args) => {
            let data_dir = args.data_dir.clone();
            let request = request(args)?;
            let created = match data_dir {
                Some(data_dir) => baton_server::auth::offline::create_key(&offline(data_dir), request)
                    .await
                    .context("cannot create the key in the data directory (is the broker still running? stop it first)")?,
                None => crate::client::connect(remote).await?.create_key(&request).await?,
            };
            print_json(&created)
        }
        KeyCommand::List(args) => {
            let keys = match args.data_dir {
                Some(data_dir) => {
                    baton_server::auth::offline::list_keys(&offline(data_dir))
                        .await
                        .context("cannot read the keys of the data directory (is the broker still running? stop it first)")?
                        .keys
                }
                None => crate::client::connect(remote).await?.list_keys().await?,
            };
            if args.table {
                print_keys(&keys)
            } else {
                print_json(&serde_json::json!({ "keys": keys }))
            }
        }
        KeyCommand::Show(args) => print_json(
            &crate::client::connect(remote)
                .await?
                .get_key(&args.name)
                .await?,
        ),
        KeyCommand::Revoke(args) => {
            crate::client::connect(remote)
                .await?
                .revoke_key(&args.name)
                .await?;
            Ok(())
        }
    }
}

fn request(args: KeyCreateArgs) -> anyhow::Result<CreateKey> {
    let mut permissions = args.allow;
    if args.admin {
        permissions.extend(baton_server::auth::rules::admin_permissions());
    }
    if permissions.is_empty() {
        bail!("give the key --admin or at least one --allow <actions>:<resource>");
    }
    Ok(CreateKey {
        name: args.name,
        permissions,
        expires_at: args.expires_at,
        sqs: args.sqs,
    })
}

/// The configuration of an offline change: the defaults with this data directory.
fn offline(data_dir: std::path::PathBuf) -> ServerConfig {
    ServerConfig {
        data_dir,
        ..ServerConfig::default()
    }
}

fn print_keys(keys: &[KeyInfo]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let permissions = k
                .permissions
                .iter()
                .map(|p| {
                    let actions: Vec<&str> = p.actions.iter().map(|a| a.as_str()).collect();
                    format!("{}:{}", actions.join(","), p.resources.join("|"))
                })
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                k.name.clone(),
                permissions,
                or_dash(k.access_key_id.clone()),
                crate::time::format_time(k.created_at),
                or_dash(k.expires_at.map(crate::time::format_time)),
                k.expired.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME",
            "PERMISSIONS",
            "SQS ACCESS KEY",
            "CREATED",
            "EXPIRES",
            "EXPIRED",
        ],
        &rows,
    )
}
