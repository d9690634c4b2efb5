//! Locks: grants, refusals with the holder, renew and release rules, expiry on the engine's
//! time, waiting acquires, and tokens that only go up.

use std::sync::Arc;

use baton_core::lock::{FencingToken, Holder, LockError, LockLimits, LockName, Released};

use super::Harness;
use crate::{EngineConfig, LockEngineError};

fn lock(name: &str) -> LockName {
    LockName::new(name, &LockLimits::default()).unwrap()
}

fn holder(name: &str) -> Holder {
    Holder::new(name).unwrap()
}

pub async fn a_lock_is_granted_once_and_refused_with_its_holder(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 10_000, 0)
        .await
        .unwrap();
    assert_eq!(first.holder, holder("a"));
    assert_eq!(first.expires_at, first.acquired_at.plus_ms(10_000));
    let refused = engine
        .acquire_lock(&lock("job"), &holder("b"), 10_000, 0)
        .await;
    assert_eq!(
        refused,
        Err(LockEngineError::Lock(LockError::Held {
            name: lock("job"),
            holder: holder("a"),
            expires_at: first.expires_at,
        }))
    );
    assert_eq!(engine.get_lock(&lock("job")).await.unwrap(), Some(first));
    let listed = engine.list_locks("jo", None, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
}

pub async fn renew_and_release_take_only_the_current_token(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 10_000, 0)
        .await
        .unwrap();
    let renewed = engine
        .renew_lock(&lock("job"), &holder("a"), first.token, 20_000)
        .await
        .unwrap();
    assert_eq!(renewed.token, first.token);
    assert_eq!(
        engine
            .release_lock(&lock("job"), &holder("a"), first.token)
            .await,
        Ok(Released::Released)
    );
    let second = engine
        .acquire_lock(&lock("job"), &holder("b"), 10_000, 0)
        .await
        .unwrap();
    assert!(second.token > first.token);
    for result in [
        engine
            .renew_lock(&lock("job"), &holder("a"), first.token, 10_000)
            .await
            .map(|_| ()),
        engine
            .release_lock(&lock("job"), &holder("a"), first.token)
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(
                result,
                Err(LockEngineError::Lock(LockError::TokenStale { current: Some(t), .. })) if t == second.token
            ),
            "{result:?}"
        );
    }
}

pub async fn a_lock_expires_on_the_engines_time(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 1_000, 0)
        .await
        .unwrap();
    harness.advance(&engine, 999).await;
    assert!(engine.get_lock(&lock("job")).await.unwrap().is_some());
    harness.advance(&engine, 1).await;
    assert_eq!(engine.get_lock(&lock("job")).await.unwrap(), None);
    assert!(matches!(
        engine
            .renew_lock(&lock("job"), &holder("a"), first.token, 1_000)
            .await,
        Err(LockEngineError::Lock(LockError::Expired { .. }))
    ));
    let second = engine
        .acquire_lock(&lock("job"), &holder("b"), 1_000, 0)
        .await
        .unwrap();
    assert_eq!(second.token, FencingToken::new(first.token.get() + 1));
}

pub async fn a_waiting_acquire_gets_the_lock_on_release(harness: &impl Harness) {
    let engine = harness.engine(EngineConfig::default()).await;
    let first = engine
        .acquire_lock(&lock("job"), &holder("a"), 60_000, 0)
        .await
        .unwrap();
    let waiter = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .acquire_lock(&lock("job"), &holder("b"), 60_000, 20_000)
                .await
        })
    };
    engine
        .release_lock(&lock("job"), &holder("a"), first.token)
        .await
        .unwrap();
    let second = waiter.await.unwrap().unwrap();
    assert_eq!(second.holder, holder("b"));
    assert!(second.token > first.token);
}
