//! End-to-end tests of `baton lock ...`: the real binary against a real `baton serve` on a
//! free port.

use crate::common::{table_rows, Server};

#[test]
fn locks_are_acquired_shown_listed_renewed_and_released() {
    let server = Server::start();
    let held = server
        .cli("lock acquire cleanup.daily --holder node-a --ttl-ms 60000")
        .assert_success()
        .json();
    assert_eq!(held["holder"], "node-a");
    let token = held["token"].as_u64().unwrap();

    server
        .cli("lock acquire cleanup.daily --holder node-b --ttl-ms 60000")
        .assert_error(
            1,
            "error: lock_held: lock cleanup.daily is held by node-a until ",
        );
    let shown = server
        .cli("lock show cleanup.daily")
        .assert_success()
        .json();
    assert_eq!(shown, held);
    let table = server
        .cli("lock list --prefix cleanup. --table")
        .assert_success()
        .stdout
        .clone();
    let rows = table_rows(&table, "NAME HOLDER TOKEN");
    assert_eq!(rows.len(), 1, "{table}");
    assert_eq!(
        rows[0][..3],
        ["cleanup.daily", "node-a", &token.to_string()]
    );
    assert_eq!(
        server
            .cli("lock list --prefix other")
            .assert_success()
            .json()["locks"],
        serde_json::json!([])
    );

    let renewed = server
        .cli(&format!(
            "lock renew cleanup.daily --holder node-a --token {token} --ttl-ms 120000"
        ))
        .assert_success()
        .json();
    assert_eq!(renewed["token"], token);
    assert!(renewed["expires_at"].as_u64() > held["expires_at"].as_u64());
    server
        .cli(&format!(
            "lock renew cleanup.daily --holder node-b --token {token} --ttl-ms 1000"
        ))
        .assert_error(1, "error: lock_token_stale: ");

    // A client waiting for the lock gets it once node-a releases it, with a larger token.
    let waiter = {
        let url = server.url.clone();
        std::thread::spawn(move || {
            crate::common::baton(
                &[
                    "--url",
                    &url,
                    "lock",
                    "acquire",
                    "cleanup.daily",
                    "--holder",
                    "node-b",
                    "--ttl-ms",
                    "60000",
                    "--wait-ms",
                    "20000",
                ],
                "",
            )
        })
    };
    let released = server
        .cli(&format!(
            "lock release cleanup.daily --holder node-a --token {token}"
        ))
        .assert_success()
        .json();
    assert_eq!(released["released"], true);
    let waited = waiter.join().unwrap();
    let second = waited.assert_success().json();
    assert_eq!(second["holder"], "node-b");
    assert!(second["token"].as_u64().unwrap() > token);

    server
        .cli(&format!(
            "lock release cleanup.daily --holder node-a --token {token}"
        ))
        .assert_error(1, "error: lock_token_stale: ");
    server
        .cli("lock show nothing-here")
        .assert_error(1, "error: lock_not_found: ");
    server.cli("lock list --max 0").assert_refused("--max");
}
