//! `baton lock ...`: acquire, renew, release, show and list locks.

use baton_sdk::locks::Acquired;
use baton_sdk::proto::{ErrorCode, LockInfo};
use baton_sdk::Client;

use crate::args::LockCommand;
use crate::output::{print_json, print_table};
use crate::time::format_time;

pub async fn run(client: &Client, command: LockCommand) -> anyhow::Result<()> {
    match command {
        LockCommand::Acquire(args) => {
            match client
                .acquire_lock(&args.name, &args.holder, args.ttl_ms, args.wait_ms)
                .await?
            {
                Acquired::Granted(info) => print_json(&info),
                // Told like every other API error: `error: lock_held: ...`, exit status 1.
                Acquired::Held(held) => Err(baton_sdk::Error::Api {
                    status: 409,
                    code: ErrorCode::LockHeld,
                    message: format!(
                        "lock {} is held by {} until {}",
                        held.name,
                        held.holder,
                        format_time(held.expires_at)
                    ),
                }
                .into()),
            }
        }
        LockCommand::Renew(args) => {
            let hold = args.hold;
            let info = client
                .renew_lock(&hold.name, &hold.holder, hold.token, args.ttl_ms)
                .await?;
            print_json(&info)
        }
        LockCommand::Release(args) => {
            let released = client
                .release_lock(&args.name, &args.holder, args.token)
                .await?;
            print_json(&serde_json::json!({ "released": released }))
        }
        LockCommand::Show(args) => {
            let Some(info) = client.get_lock(&args.name).await? else {
                return Err(baton_sdk::Error::Api {
                    status: 404,
                    code: ErrorCode::LockNotFound,
                    message: format!("lock {} is not held", args.name),
                }
                .into());
            };
            if args.table {
                print_locks(&[info])
            } else {
                print_json(&info)
            }
        }
        LockCommand::List(args) => {
            let list = client
                .list_locks(&args.prefix, args.after.as_deref(), args.max)
                .await?;
            if args.table {
                print_locks(&list.locks)
            } else {
                print_json(&list)
            }
        }
    }
}

fn print_locks(locks: &[LockInfo]) -> anyhow::Result<()> {
    let header = ["NAME", "HOLDER", "TOKEN", "ACQUIRED_AT", "EXPIRES_AT"];
    let rows: Vec<Vec<String>> = locks
        .iter()
        .map(|lock| {
            vec![
                lock.name.clone(),
                lock.holder.clone(),
                lock.token.to_string(),
                format_time(lock.acquired_at),
                format_time(lock.expires_at),
            ]
        })
        .collect();
    print_table(&header, &rows)
}
