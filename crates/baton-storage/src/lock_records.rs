//! On-disk record types of locks, format version 1 (see `records` for the rules: dedicated
//! plain types, postcard, never change a variant, append new ones at the end).
//!
//! Frame kinds: [`KIND_LOCK_OP`] for [`LockOp`] in the main log, [`KIND_LOCK_CHECKPOINT`] for
//! [`LockCheckpointPart`] in checkpoints.
//!
//! Records hold outcomes (the token granted, the expiry set), never the request: replay
//! depends neither on timing nor on the limits configured at the time.

use serde::{Deserialize, Serialize};

/// A log record: one change to the lock table.
pub const KIND_LOCK_OP: u8 = 18;
/// The checkpoint part holding the lock table.
pub const KIND_LOCK_CHECKPOINT: u8 = 19;

/// One change to the lock table, logged after it was applied. Times are milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LockOp {
    Granted {
        name: String,
        holder: String,
        token: u64,
        acquired_at: u64,
        expires_at: u64,
    },
    Renewed {
        name: String,
        token: u64,
        now: u64,
        expires_at: u64,
    },
    Released {
        name: String,
        token: u64,
        now: u64,
    },
}

/// A name in the lock table: its last token and its hold, if any (possibly expired).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockV1 {
    pub name: String,
    pub last_token: u64,
    pub hold: Option<HoldV1>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldV1 {
    pub holder: String,
    pub acquired_at: u64,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LockCheckpointPart {
    /// The whole lock table as of `covered_lsn`: lock records at or below it are in here.
    /// Every token of a name not listed is at or below `token_floor`.
    Locks {
        covered_lsn: u64,
        token_floor: u64,
        locks: Vec<LockV1>,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::records::{decode, encode};

    #[test]
    fn lock_records_round_trip() {
        let op = LockOp::Granted {
            name: "job".into(),
            holder: "a".into(),
            token: 7,
            acquired_at: 1,
            expires_at: 2,
        };
        let bytes = encode(&op);
        assert_eq!(decode::<LockOp>(KIND_LOCK_OP, &bytes).unwrap(), op);
        assert!(decode::<LockOp>(KIND_LOCK_OP, &bytes[..bytes.len() - 1]).is_err());
        let part = LockCheckpointPart::Locks {
            covered_lsn: 9,
            token_floor: 3,
            locks: vec![LockV1 {
                name: "job".into(),
                last_token: 7,
                hold: Some(HoldV1 {
                    holder: "a".into(),
                    acquired_at: 1,
                    expires_at: 2,
                }),
            }],
        };
        assert_eq!(
            decode::<LockCheckpointPart>(KIND_LOCK_CHECKPOINT, &encode(&part)).unwrap(),
            part
        );
    }

    #[test]
    fn the_v1_lock_encoding_is_stable() {
        let op = LockOp::Released {
            name: "j".into(),
            token: 2,
            now: 3,
        };
        assert_eq!(encode(&op), [2, 1, b'j', 2, 3]);
    }
}
