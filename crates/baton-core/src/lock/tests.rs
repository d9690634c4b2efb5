#![allow(clippy::unwrap_used)]

use super::*;

fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

fn limits() -> LockLimits {
    LockLimits {
        locks_max: 3,
        name_chars_max: 16,
        ttl_ms_min: 10,
        ttl_ms_max: 10_000,
    }
}

fn name(s: &str) -> LockName {
    LockName::new(s, &limits()).unwrap()
}

fn holder(s: &str) -> Holder {
    Holder::new(s).unwrap()
}

fn token(t: u64) -> FencingToken {
    FencingToken::new(t)
}

#[test]
fn acquire_grants_a_free_lock_with_an_expiry() {
    let mut table = LockTable::new(limits());
    let hold = table
        .acquire(at(100), &name("job"), &holder("a"), 500)
        .unwrap();
    assert_eq!(hold.token, token(1));
    assert_eq!(hold.acquired_at, at(100));
    assert_eq!(hold.expires_at, at(600));
    assert_eq!(table.get(at(599), &name("job")), Some(hold));
}

#[test]
fn a_held_lock_is_refused_with_its_holder_and_expiry() {
    let mut table = LockTable::new(limits());
    table
        .acquire(at(0), &name("job"), &holder("a"), 500)
        .unwrap();
    let refused = table.acquire(at(10), &name("job"), &holder("b"), 500);
    assert_eq!(
        refused,
        Err(LockError::Held {
            name: name("job"),
            holder: holder("a"),
            expires_at: at(500),
        })
    );
    // Not re-entrant: the same holder is refused as well.
    assert!(matches!(
        table.acquire(at(10), &name("job"), &holder("a"), 500),
        Err(LockError::Held { .. })
    ));
}

#[test]
fn expiry_frees_the_lock_exactly_at_expires_at() {
    let mut table = LockTable::new(limits());
    table
        .acquire(at(0), &name("job"), &holder("a"), 500)
        .unwrap();
    assert!(table.get(at(499), &name("job")).is_some());
    assert_eq!(table.get(at(500), &name("job")), None);
    let second = table
        .acquire(at(500), &name("job"), &holder("b"), 500)
        .unwrap();
    assert_eq!(second.token, token(2));
    assert_eq!(second.holder, holder("b"));
}

#[test]
fn tokens_strictly_increase_over_release_and_expiry() {
    let mut table = LockTable::new(limits());
    let mut last = FencingToken::new(0);
    let mut now = 0;
    for round in 0..10 {
        let hold = table
            .acquire(at(now), &name("job"), &holder("a"), 100)
            .unwrap();
        assert!(
            hold.token > last,
            "round {round}: {:?} after {last:?}",
            hold.token
        );
        last = hold.token;
        if round % 2 == 0 {
            table
                .release(at(now), &name("job"), &holder("a"), hold.token)
                .unwrap();
        } else {
            now += 100; // expires
        }
    }
}

#[test]
fn a_stale_token_is_refused_for_renew_and_release() {
    let mut table = LockTable::new(limits());
    let first = table
        .acquire(at(0), &name("job"), &holder("a"), 100)
        .unwrap();
    let second = table
        .acquire(at(100), &name("job"), &holder("b"), 100)
        .unwrap();
    let stale = LockError::TokenStale {
        name: name("job"),
        token: first.token,
        current: Some(second.token),
    };
    assert_eq!(
        table.renew(at(150), &name("job"), &holder("a"), first.token, 100),
        Err(stale.clone())
    );
    assert_eq!(
        table.release(at(150), &name("job"), &holder("a"), first.token),
        Err(stale)
    );
    // Nothing changed: the second hold is intact.
    assert_eq!(table.get(at(150), &name("job")), Some(second));
}

#[test]
fn renew_needs_the_holder_and_a_live_hold() {
    let mut table = LockTable::new(limits());
    let hold = table
        .acquire(at(0), &name("job"), &holder("a"), 100)
        .unwrap();
    assert!(matches!(
        table.renew(at(50), &name("job"), &holder("b"), hold.token, 100),
        Err(LockError::TokenStale { .. })
    ));
    let renewed = table
        .renew(at(50), &name("job"), &holder("a"), hold.token, 200)
        .unwrap();
    assert_eq!(renewed.expires_at, at(250));
    assert_eq!(renewed.token, hold.token);
    assert_eq!(
        table.renew(at(250), &name("job"), &holder("a"), hold.token, 100),
        Err(LockError::Expired {
            name: name("job"),
            token: hold.token,
            expired_at: at(250),
        })
    );
}

#[test]
fn release_is_idempotent_for_the_last_token() {
    let mut table = LockTable::new(limits());
    let hold = table
        .acquire(at(0), &name("job"), &holder("a"), 100)
        .unwrap();
    assert_eq!(
        table.release(at(10), &name("job"), &holder("a"), hold.token),
        Ok(Released::Released)
    );
    assert_eq!(
        table.release(at(10), &name("job"), &holder("a"), hold.token),
        Ok(Released::AlreadyEnded)
    );
    assert_eq!(table.get(at(10), &name("job")), None);
    assert_eq!(
        table.release(at(10), &name("other"), &holder("a"), hold.token),
        Err(LockError::NotHeld {
            name: "other".into()
        })
    );
}

#[test]
fn a_full_table_sweeps_tombstones_and_tokens_never_go_back() {
    let mut table = LockTable::new(limits());
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        let hold = table.acquire(at(0), &name(n), &holder("h"), 10).unwrap();
        assert_eq!(hold.token, token(1), "lock {i}");
    }
    // Raise `a` to token 3, then let everything expire.
    table.acquire(at(10), &name("a"), &holder("h"), 10).unwrap();
    let a3 = table.acquire(at(20), &name("a"), &holder("h"), 10).unwrap();
    assert_eq!(a3.token, token(3));
    // A fourth name sweeps the three tombstones (floor 3) and starts above the floor.
    let d = table.acquire(at(30), &name("d"), &holder("h"), 10).unwrap();
    assert_eq!(d.token, token(4));
    assert_eq!(table.n_names(), 1);
    let a = table.acquire(at(30), &name("a"), &holder("h"), 10).unwrap();
    assert!(a.token > a3.token, "{:?}", a.token);
}

#[test]
fn a_table_full_of_live_holds_refuses_new_names() {
    let mut table = LockTable::new(limits());
    for n in ["a", "b", "c"] {
        table.acquire(at(0), &name(n), &holder("h"), 1000).unwrap();
    }
    assert_eq!(
        table.acquire(at(1), &name("d"), &holder("h"), 1000),
        Err(LockError::TooManyLocks { limit: 3 })
    );
    assert_eq!(table.n_held(at(1)), 3);
}

#[test]
fn limits_are_precise_errors() {
    let table = LockTable::new(limits());
    assert_eq!(
        table.check_ttl(9),
        Err(LockError::TtlOutOfRange {
            ttl_ms: 9,
            min: 10,
            max: 10_000
        })
    );
    assert!(table.check_ttl(10_001).is_err());
    assert!(table.check_ttl(10).is_ok());
    assert!(matches!(
        LockName::new(&"x".repeat(17), &limits()),
        Err(LockError::InvalidName { reason, .. }) if reason.contains("at most 16")
    ));
    assert!(matches!(
        LockName::new("a/b", &limits()),
        Err(LockError::InvalidName { reason, .. }) if reason.contains("'/'")
    ));
    assert!(LockName::new("order:42.x_y-z", &limits()).is_ok());
    assert!(matches!(
        Holder::new(""),
        Err(LockError::InvalidHolder { .. })
    ));
    assert!(Holder::new(&"h".repeat(HOLDER_CHARS_MAX + 1)).is_err());
}

#[test]
fn list_filters_by_prefix_skips_free_locks_and_pages() {
    let mut table = LockTable::new(LockLimits::default());
    let lim = LockLimits::default();
    for n in ["job:a", "job:b", "job:c", "jobs", "other"] {
        table
            .acquire(at(0), &LockName::new(n, &lim).unwrap(), &holder("h"), 100)
            .unwrap();
    }
    let b = LockName::new("job:b", &lim).unwrap();
    let hold = table.get(at(0), &b).unwrap();
    table.release(at(0), &b, &holder("h"), hold.token).unwrap();
    let names = |list: Vec<LockHold>| {
        list.into_iter()
            .map(|h| h.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(table.list(at(1), "job:", None, 10)),
        ["job:a", "job:c"]
    );
    assert_eq!(names(table.list(at(1), "job", None, 2)), ["job:a", "job:c"]);
    assert_eq!(names(table.list(at(1), "job", Some("job:c"), 10)), ["jobs"]);
    assert_eq!(table.list(at(100), "", None, 10), Vec::new());
}

#[test]
fn fencing_check_accepts_only_the_live_current_token() {
    let mut table = LockTable::new(limits());
    let first = table
        .acquire(at(0), &name("job"), &holder("a"), 100)
        .unwrap();
    assert!(table.is_current(at(50), &name("job"), first.token));
    assert!(!table.is_current(at(100), &name("job"), first.token));
    let second = table
        .acquire(at(100), &name("job"), &holder("b"), 100)
        .unwrap();
    assert!(!table.is_current(at(150), &name("job"), first.token));
    assert!(table.is_current(at(150), &name("job"), second.token));
}

#[test]
fn restore_never_lowers_a_token() {
    let mut live = LockTable::new(limits());
    let first = live
        .acquire(at(0), &name("job"), &holder("a"), 100)
        .unwrap();
    live.release(at(1), &name("job"), &holder("a"), first.token)
        .unwrap();
    let second = live
        .acquire(at(2), &name("job"), &holder("b"), 100)
        .unwrap();

    let mut replayed = LockTable::new(limits());
    for snapshot in live.snapshot() {
        replayed.restore_snapshot(snapshot);
    }
    replayed.restore_floor(live.token_floor());
    // Records the snapshot already covers change nothing.
    replayed.restore_grant(first.clone());
    replayed.restore_release(&name("job"), first.token);
    assert_eq!(replayed.get(at(3), &name("job")), Some(second.clone()));
    replayed.restore_renew(&name("job"), second.token, at(500));
    assert_eq!(replayed.expires_at(at(3), &name("job")), Some(at(500)));
    let next = replayed
        .acquire(at(500), &name("job"), &holder("c"), 100)
        .unwrap();
    assert_eq!(next.token, token(3));
}
