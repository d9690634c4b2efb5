//! Durability of locks: the lock table's records and checkpoint part, and their replay.
//!
//! # Which records apply
//! Lock records are submitted under the lock table's mutex, and the checkpoint's `Locks` part
//! reads the table and its `covered_lsn` under that same mutex, so the part holds exactly the
//! records up to `covered_lsn`. A lock record applies when its LSN is above it (or above the
//! checkpoint's `start_lsn` when there is no `Locks` part). Applying is `LockTable::restore_*`,
//! which never lowers a token, so even a record applied twice could not make a token go back.

use baton_core::lock::{
    FencingToken, Holder, LockHold, LockLimits, LockName, LockSnapshot, LockTable,
    LOCK_NAME_CHARS_LIMIT,
};
use baton_core::Timestamp;
use baton_storage::lock_records::{
    HoldV1, LockCheckpointPart, LockOp, LockV1, KIND_LOCK_CHECKPOINT, KIND_LOCK_OP,
};
use baton_storage::records;

use super::codec::DecodeResult;
use super::replay::ReplayState;

/// The lock table as replay rebuilds it.
pub(crate) struct LockReplay {
    pub table: LockTable,
    /// Lock records at or below this LSN are in the checkpoint.
    covered_lsn: Option<u64>,
}

impl Default for LockReplay {
    fn default() -> Self {
        LockReplay {
            table: LockTable::new(replay_limits()),
            covered_lsn: None,
        }
    }
}

/// Replay accepts every name that was ever granted, whatever the limits are now.
fn replay_limits() -> LockLimits {
    LockLimits {
        name_chars_max: LOCK_NAME_CHARS_LIMIT,
        ..LockLimits::default()
    }
}

fn lock_name(name: &str) -> DecodeResult<LockName> {
    LockName::new(name, &replay_limits()).map_err(|e| e.to_string())
}

fn holder(holder: &str) -> DecodeResult<Holder> {
    Holder::new(holder).map_err(|e| e.to_string())
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

pub(crate) fn granted_to_disk(hold: &LockHold) -> LockOp {
    LockOp::Granted {
        name: hold.name.to_string(),
        holder: hold.holder.to_string(),
        token: hold.token.get(),
        acquired_at: hold.acquired_at.as_millis(),
        expires_at: hold.expires_at.as_millis(),
    }
}

/// The checkpoint part holding `table`, as of `covered_lsn`.
pub(crate) fn checkpoint_part(table: &LockTable, covered_lsn: u64) -> (u8, Vec<u8>) {
    let locks = table
        .snapshot()
        .map(|snapshot| LockV1 {
            name: snapshot.name.to_string(),
            last_token: snapshot.last_token.get(),
            hold: snapshot
                .hold
                .map(|(holder, acquired_at, expires_at)| HoldV1 {
                    holder: holder.to_string(),
                    acquired_at: acquired_at.as_millis(),
                    expires_at: expires_at.as_millis(),
                }),
        })
        .collect();
    let part = LockCheckpointPart::Locks {
        covered_lsn,
        token_floor: table.token_floor(),
        locks,
    };
    (KIND_LOCK_CHECKPOINT, records::encode(&part))
}

pub(crate) fn apply_checkpoint(state: &mut ReplayState, payload: &[u8]) -> DecodeResult<()> {
    let part: LockCheckpointPart =
        records::decode(KIND_LOCK_CHECKPOINT, payload).map_err(|e| e.to_string())?;
    let LockCheckpointPart::Locks {
        covered_lsn,
        token_floor,
        locks,
    } = part;
    let replay = &mut state.locks;
    replay.covered_lsn = Some(covered_lsn);
    replay.table = LockTable::new(replay_limits());
    replay.table.restore_floor(token_floor);
    for lock in locks {
        let hold = match lock.hold {
            Some(h) => Some((holder(&h.holder)?, at(h.acquired_at), at(h.expires_at))),
            None => None,
        };
        replay.table.restore_snapshot(LockSnapshot {
            name: lock_name(&lock.name)?,
            last_token: FencingToken::new(lock.last_token),
            hold,
        });
    }
    Ok(())
}

pub(crate) fn apply_record(state: &mut ReplayState, lsn: u64, payload: &[u8]) -> DecodeResult<()> {
    let op: LockOp = records::decode(KIND_LOCK_OP, payload).map_err(|e| e.to_string())?;
    if lsn <= state.locks.covered_lsn.unwrap_or(state.start_lsn()) {
        return Ok(());
    }
    let table = &mut state.locks.table;
    match op {
        LockOp::Granted {
            name,
            holder: who,
            token,
            acquired_at,
            expires_at,
        } => table.restore_grant(LockHold {
            name: lock_name(&name)?,
            holder: holder(&who)?,
            token: FencingToken::new(token),
            acquired_at: at(acquired_at),
            expires_at: at(expires_at),
        }),
        LockOp::Renewed {
            name,
            token,
            expires_at,
            ..
        } => table.restore_renew(&lock_name(&name)?, FencingToken::new(token), at(expires_at)),
        LockOp::Released { name, token, .. } => {
            table.restore_release(&lock_name(&name)?, FencingToken::new(token));
        }
    }
    Ok(())
}
