//! Fenced writes: a write request's `"fence": {"lock", "token"}` checked and applied as one
//! step by the engine (`LockEngine::fenced`), for sends, acks, nacks, appends, group acks and
//! publishes alike.

use baton_core::lock::{FencingToken, LockName};
use baton_engine::{FencedOutcome, FencedWrite, LockEngineError};
use baton_proto as proto;

use super::ServiceError;
use crate::state::AppState;

/// Runs `write` only while `fence`'s token is its lock's current hold (409 `fenced` otherwise,
/// nothing written).
pub async fn write(
    state: &AppState,
    fence: proto::Fence,
    write: FencedWrite,
) -> Result<FencedOutcome, ServiceError> {
    let lock = LockName::new(&fence.lock, &state.engine.lock_settings().limits)
        .map_err(|error| ServiceError::Lock(LockEngineError::Lock(error)))?;
    Ok(state
        .engine
        .fenced(&lock, FencingToken::new(fence.token), write)
        .await?)
}

/// An engine that answered a fenced write with another kind of outcome than the write's.
pub fn mismatch(write: &'static str) -> ServiceError {
    ServiceError::Internal(format!(
        "the engine answered a fenced {write} with another operation's outcome"
    ))
}
