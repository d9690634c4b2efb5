//! End-to-end tests of `baton sink ...`: the real binary against a real `baton serve` and the
//! machine's PostgreSQL (127.0.0.1:5432, database `test`, user postgres), read back with
//! `psql`. Each test uses a schema of its own, dropped at its end.

use std::process::Command;

use crate::common::{eventually, table_rows, Server};
use serde_json::json;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn psql(sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn sinks_are_put_listed_shown_paused_resumed_and_deleted() {
    let server = Server::start();
    let schema = format!("cli_sink_{}", std::process::id());
    let table = format!("{schema}.events");
    server
        .cli("stream create access --partitions 2")
        .assert_success();
    let records: Vec<_> = (0..20)
        .map(|i| json!({"key": format!("k{i}"), "value": json!({"n": i, "kind": "login"}).to_string()}))
        .collect();
    server.http(
        "POST",
        "/v1/streams/access/records",
        json!({"records": records}),
    );

    let put = server
        .run(&[
            "sink",
            "put",
            "arch",
            "--stream",
            "access",
            "--postgres",
            PG_URL,
            "--table",
            &table,
            "--column",
            "n=$.n:bigint",
            "--column",
            "kind=$.kind",
            "--column",
            "at=$timestamp",
            "--batch-max",
            "8",
            "--flush-ms",
            "5",
        ])
        .assert_success()
        .json();
    assert_eq!(put["definition"]["batch_max"], 8);
    eventually("20 rows written", || {
        let shown = server.cli("sink show arch").assert_success().json();
        (shown["stats"]["rows_written_total"] == 20).then_some(())
    });
    assert_eq!(
        psql(&format!("SELECT count(*), sum(n), min(kind) FROM {table}")),
        "20|190|login"
    );

    let list = server
        .cli("sink list --table")
        .assert_success()
        .stdout
        .clone();
    let rows = table_rows(&list, "NAME SOURCE");
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0][0], "arch");
    assert!(rows[0].contains(&"running".to_string()), "{list}");

    let paused = server.cli("sink pause arch").assert_success().json();
    assert_eq!(paused["state"], "paused");
    let resumed = server.cli("sink resume arch").assert_success().json();
    assert_eq!(resumed["state"], "running");

    server
        .run(&[
            "sink",
            "put",
            "other",
            "--stream",
            "nope",
            "--postgres",
            PG_URL,
            "--table",
            "t",
        ])
        .assert_error(1, "stream_not_found");
    server
        .run(&[
            "sink",
            "put",
            "other",
            "--stream",
            "access",
            "--postgres",
            "mysql://h/db",
            "--table",
            "t",
        ])
        .assert_error(1, "postgres.url");
    server
        .run(&[
            "sink",
            "put",
            "other",
            "--queue",
            "q",
            "--group",
            "g",
            "--postgres",
            PG_URL,
            "--table",
            "t",
        ])
        .assert_error(1, "source.group");

    server.cli("sink delete arch").assert_success();
    server
        .cli("sink show arch")
        .assert_error(1, "sink_not_found");
    assert_eq!(
        psql(&format!("SELECT count(*) FROM {table}")),
        "20",
        "the rows stay"
    );
    psql(&format!("DROP SCHEMA {schema} CASCADE"));
}
