//! End-to-end tests of `baton stream ...` and `baton stream group ...`: the real binary
//! against a real `baton serve` on a free port.

#![allow(clippy::unwrap_used)]

mod common;

use common::{table_rows, Server};
use serde_json::Value;

fn offsets(appended: &Value) -> Vec<(u64, u64)> {
    appended["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            (
                record["partition"].as_u64().unwrap(),
                record["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn values(records: &Value) -> Vec<String> {
    records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["value"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn streams_are_created_appended_read_from_an_offset_or_a_time_and_followed() {
    let server = Server::start();
    let created = server.run(&[
        "stream",
        "create",
        "clicks",
        "--partitions",
        "2",
        "--retention-ms",
        "86400000",
    ]);
    let created = created.assert_success().json();
    assert_eq!(created["name"], "clicks");
    assert_eq!(created["attributes"]["partitions"], 2);
    assert_eq!(created["attributes"]["retention_ms"], 86_400_000);
    assert_eq!(created["attributes"]["max_records"], Value::Null);
    // The same attributes again: unchanged; others: refused by the server.
    server
        .run(&[
            "stream",
            "create",
            "clicks",
            "--partitions",
            "2",
            "--retention-ms",
            "86400000",
        ])
        .assert_success();
    server
        .run(&["stream", "create", "clicks", "--partitions", "3"])
        .assert_error(1, "error: stream_exists: ");
    server
        .run(&["stream", "create", "other", "--partitions", "0"])
        .assert_refused("--partitions");

    let appended = server.run(&[
        "stream",
        "append",
        "clicks",
        "opened /pricing",
        "clicked buy",
        "--key",
        "user-7",
        "--header",
        "source=web",
    ]);
    let appended = appended.assert_success().json();
    let placed = offsets(&appended);
    let partition = placed[0].0;
    assert_eq!(
        placed,
        [(partition, 0), (partition, 1)],
        "one key, one partition"
    );
    let other = 1 - partition;
    let other_text = other.to_string();
    let piped = server.run_with_stdin(
        &[
            "stream",
            "append",
            "clicks",
            "-",
            "--partition",
            &other_text,
        ],
        "from stdin\n",
    );
    assert_eq!(offsets(&piped.assert_success().json()), [(other, 0)]);
    // An idempotent producer's retry lands once and answers the original offsets.
    let exactly_once = [
        "stream",
        "append",
        "clicks",
        "once",
        "--partition",
        &other_text,
        "--producer-id",
        "importer",
        "--sequence",
        "1",
    ];
    let first = server.run(&exactly_once).assert_success().json();
    let again = server.run(&exactly_once).assert_success().json();
    assert_eq!(offsets(&first), [(other, 1)]);
    assert_eq!(offsets(&again), offsets(&first));
    server
        .run(&[
            "stream",
            "append",
            "clicks",
            "x",
            "--producer-id",
            "importer",
        ])
        .assert_refused("--sequence");
    server
        .run(&["stream", "append", "clicks", "-", "-"])
        .assert_error(1, "only one VALUE can be `-`");

    let partition_text = partition.to_string();
    let read = server.run(&[
        "stream",
        "read",
        "clicks",
        "--partition",
        &partition_text,
        "--from-offset",
        "1",
    ]);
    let read = read.assert_success().json();
    assert_eq!(values(&read), ["clicked buy"]);
    assert_eq!(read["next_offset"], 2);
    let record = &read["records"][0];
    assert_eq!(record["key"], "user-7");
    assert_eq!(record["headers"]["source"], "web");
    let timestamp = record["timestamp"].as_u64().unwrap();

    // A time: the first record at or after it, in milliseconds or RFC 3339.
    let from_time = |time: &str, max: &str| {
        let output = server.run(&[
            "stream",
            "read",
            "clicks",
            "--partition",
            &partition_text,
            "--from-time",
            time,
            "--max",
            max,
        ]);
        values(&output.assert_success().json())
    };
    assert_eq!(from_time("1970-01-01T00:00:00Z", "1"), ["opened /pricing"]);
    assert_eq!(from_time("0", "100"), ["opened /pricing", "clicked buy"]);
    assert!(from_time(&(timestamp + 60_000).to_string(), "100").is_empty());
    assert!(from_time("2999-01-01T00:00:00+02:00", "100").is_empty());

    let table = server.run(&[
        "stream",
        "read",
        "clicks",
        "--partition",
        &other_text,
        "--from-offset",
        "0",
        "--table",
    ]);
    let table = &table.assert_success().stdout;
    assert!(table.starts_with("PARTITION  OFFSET  TIMESTAMP"), "{table}");
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{table}");
    // The newline of the value read from stdin is shown escaped, on the record's own line.
    assert!(rows[0].ends_with(r"from stdin\n"), "{table}");
    assert!(
        rows[0].contains("Z  -"),
        "an RFC 3339 time, no key: {table}"
    );
    assert!(rows[1].ends_with("once"), "{table}");

    // Bad arguments never reach the server.
    server
        .run(&["stream", "read", "clicks"])
        .assert_refused("--from-offset");
    server
        .run(&[
            "stream",
            "read",
            "clicks",
            "--from-offset",
            "0",
            "--from-time",
            "0",
        ])
        .assert_refused("cannot be used with");
    server
        .run(&["stream", "read", "clicks", "--from-time", "yesterday"])
        .assert_refused("RFC 3339");
    server
        .run(&[
            "stream",
            "read",
            "clicks",
            "--from-time",
            "2024-02-30T00:00:00Z",
        ])
        .assert_refused("not a valid date");
    server
        .run(&[
            "stream",
            "read",
            "clicks",
            "--from-offset",
            "0",
            "--max",
            "0",
        ])
        .assert_refused("--max");
    server
        .run(&[
            "stream",
            "read",
            "clicks",
            "--from-offset",
            "0",
            "--wait-ms",
            "20001",
        ])
        .assert_refused("--wait-ms");
    // What only the server knows, it reports precisely.
    server
        .run(&[
            "stream",
            "read",
            "clicks",
            "--partition",
            "7",
            "--from-offset",
            "0",
        ])
        .assert_error(1, "error: partition_out_of_range: ");
    let missing = server.run(&["stream", "read", "nope", "--from-offset", "0"]);
    missing.assert_error(1, "error: stream_not_found: ");
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);

    let followed = server.run(&[
        "stream",
        "follow",
        "clicks",
        "--partition",
        &partition_text,
        "--from-offset",
        "0",
        "--count",
        "2",
    ]);
    let lines = followed.assert_success().json_lines();
    assert_eq!(lines.len(), 2, "{}", followed.stdout);
    assert_eq!(lines[0]["type"], "record");
    assert_eq!(lines[0]["value"], "opened /pricing");
    assert_eq!(lines[1]["offset"], 1);
    server
        .run(&["stream", "follow", "nope"])
        .assert_error(1, "error: stream_not_found: ");

    let listed = server.run(&["stream", "list"]).assert_success().json();
    let streams = listed["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{listed}");
    assert_eq!(streams[0]["stats"]["records"], 4);
    let table = server.run(&["stream", "list", "--table"]);
    let rows = table_rows(&table.assert_success().stdout, "NAME  PARTITIONS  RECORDS");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (&rows[0][0][..], &rows[0][1][..], &rows[0][2][..]),
        ("clicks", "2", "4")
    );
    assert_eq!(rows[0][5..], ["86400000", "-", "-"]);

    let shown = server
        .run(&["stream", "show", "clicks"])
        .assert_success()
        .json();
    let partitions = shown["stats"]["partitions"].as_array().unwrap();
    assert_eq!(partitions[partition as usize]["next_offset"], 2);
    assert_eq!(partitions[other as usize]["last_offset"], 1);
    let table = server.run(&["stream", "show", "clicks", "--table"]);
    let stdout = &table.assert_success().stdout;
    let rows = table_rows(stdout, "PARTITION  FIRST_OFFSET  NEXT_OFFSET  LAST_OFFSET");
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(
        rows[partition as usize][..4],
        [partition_text.as_str(), "0", "2", "1"]
    );
    assert!(stdout.contains("\n\nGROUP  MODE  START"), "{stdout}");

    server.run(&["stream", "delete", "clicks"]).assert_success();
    server
        .run(&["stream", "show", "clicks"])
        .assert_error(1, "error: stream_not_found: ");
    server
        .run(&["stream", "delete", "clicks"])
        .assert_error(1, "error: stream_not_found: ");
}

#[test]
fn consumer_groups_read_ack_list_pending_claim_seek_and_delete() {
    let server = Server::start();
    server
        .run(&["stream", "create", "jobs", "--partitions", "1"])
        .assert_success();
    server
        .run(&["stream", "append", "jobs", "a", "b", "c"])
        .assert_success();

    let group = |args: &[&str]| {
        let mut all = vec!["stream", "group"];
        all.extend_from_slice(args);
        server.run(&all)
    };
    let created = group(&["create", "jobs", "billing", "--start", "earliest"]);
    let created = created.assert_success().json();
    assert_eq!(created["name"], "billing");
    assert_eq!(created["start"], "earliest");
    assert_eq!(created["mode"], "partitioned");
    assert_eq!(created["stats"]["lag_total"], 3);
    group(&[
        "create", "jobs", "billing", "--start", "earliest", "--mode", "shared",
    ])
    .assert_error(1, "error: group_exists: ");
    let from_time = group(&[
        "create",
        "jobs",
        "audit",
        "--start",
        "time:2999-01-01T00:00:00Z",
        "--mode",
        "shared",
        "--session-timeout-ms",
        "1000",
    ]);
    let from_time = from_time.assert_success().json();
    assert_eq!(from_time["start"]["time"], 32_472_144_000_000_u64);
    assert_eq!(from_time["mode"], "shared");
    assert_eq!(from_time["session_timeout_ms"], 1000);
    group(&["create", "jobs", "x", "--start", "first"]).assert_refused("`earliest`");
    group(&["create", "jobs", "x"]).assert_refused("--start");
    group(&[
        "create",
        "jobs",
        "x",
        "--start",
        "latest",
        "--session-timeout-ms",
        "5",
    ])
    .assert_refused("--session-timeout-ms");
    group(&["create", "nope", "x", "--start", "latest"])
        .assert_error(1, "error: stream_not_found: ");

    let read = group(&["read", "jobs", "billing", "--consumer", "w1", "--max", "2"]);
    let read = read.assert_success().json();
    let ids: Vec<&str> = read["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["0-0", "0-1"]);
    assert_eq!(read["records"][0]["delivery_count"], 1);
    assert_eq!(read["records"][1]["value"], "b");

    let pending = group(&["pending", "jobs", "billing"])
        .assert_success()
        .json();
    assert_eq!(pending["count"], 2);
    assert_eq!(pending["pending"][0]["consumer"], "w1");
    let one = group(&[
        "pending",
        "jobs",
        "billing",
        "--consumer",
        "w1",
        "--max",
        "1",
    ]);
    let one = one.assert_success().json();
    assert_eq!(
        (
            one["count"].as_u64(),
            one["pending"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
    let table = group(&["pending", "jobs", "billing", "--table"]);
    let rows = table_rows(
        &table.assert_success().stdout,
        "ID   CONSUMER  IDLE_MS  DELIVERIES",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (&rows[1][0][..], &rows[1][1][..], &rows[1][3][..]),
        ("0-1", "w1", "1")
    );
    group(&["pending", "jobs", "billing", "--max", "1001"]).assert_refused("--max");
    group(&["pending", "jobs", "billing", "--consumer", "ghost"])
        .assert_error(1, "error: consumer_not_found: ");

    let acked = group(&["ack", "jobs", "billing", "0-0"])
        .assert_success()
        .json();
    assert_eq!(acked["results"][0]["ok"], true);
    let again = group(&["ack", "jobs", "billing", "0-0", "0-1"]);
    again.assert_error(1, "error: ack of item 0: record_not_pending: ");
    assert!(
        again.stderr.contains("1 of 2 acks failed"),
        "{}",
        again.stderr
    );
    // Every result is on stdout, the failed ones too.
    let results = again.json();
    assert!(results["results"][0]["error"].is_object());
    group(&["ack", "jobs", "billing", "0-1x"]).assert_refused("partition-offset");

    // The second ack above took 0-1 as well. --ack acknowledges what was printed.
    let read = group(&[
        "read",
        "jobs",
        "billing",
        "--consumer",
        "w1",
        "--ack",
        "--table",
    ]);
    let rows = table_rows(&read.assert_success().stdout, "ID");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (&rows[0][0][..], rows[0].last().map(String::as_str)),
        ("0-2", Some("c"))
    );
    let pending = group(&["pending", "jobs", "billing"])
        .assert_success()
        .json();
    assert_eq!(pending["count"], 0, "{pending}");

    // Left pending by w1, taken over by w2.
    server
        .run(&["stream", "append", "jobs", "d"])
        .assert_success();
    let read = group(&["read", "jobs", "billing", "--consumer", "w1"]);
    assert_eq!(read.assert_success().json()["records"][0]["id"], "0-3");
    let claimed = group(&[
        "claim",
        "jobs",
        "billing",
        "--consumer",
        "w2",
        "--min-idle-ms",
        "0",
        "--table",
    ]);
    let rows = table_rows(
        &claimed.assert_success().stdout,
        "ID   PARTITION  OFFSET  TIMESTAMP  ",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (&rows[0][0][..], &rows[0][4][..]),
        ("0-3", "2"),
        "delivery count 2"
    );
    let pending = group(&["pending", "jobs", "billing"])
        .assert_success()
        .json();
    assert_eq!(pending["pending"][0]["consumer"], "w2", "{pending}");
    let none = group(&[
        "claim",
        "jobs",
        "billing",
        "--consumer",
        "w3",
        "--min-idle-ms",
        "3600000",
    ]);
    assert_eq!(
        none.assert_success().json()["records"],
        serde_json::json!([])
    );
    group(&["claim", "jobs", "billing", "--consumer", "w3"]).assert_refused("--min-idle-ms");

    let shown = group(&["show", "jobs", "billing"]).assert_success().json();
    assert_eq!(shown["stats"]["pending"], 1);
    assert_eq!(shown["stats"]["lag_total"], 0);
    let table = group(&["show", "jobs", "billing", "--table"]);
    let stdout = &table.assert_success().stdout;
    let rows = table_rows(stdout, "GROUP    MODE         START");
    assert_eq!(rows[0][..3], ["billing", "partitioned", "earliest"]);
    assert_eq!(rows[0][4..6], ["0", "1"], "lag 0, 1 pending: {stdout}");
    assert!(
        stdout.contains("\n\nPARTITION  LAG  OWNER\n0          0"),
        "{stdout}"
    );

    let seeked = group(&["seek", "jobs", "billing", "earliest"])
        .assert_success()
        .json();
    assert_eq!(seeked["stats"]["lag_total"], 4);
    let seeked = group(&["seek", "jobs", "billing", "offset:3", "--partition", "0"]);
    assert_eq!(
        seeked.assert_success().json()["stats"]["lag"],
        serde_json::json!([1])
    );
    let seeked = group(&["seek", "jobs", "billing", "time:1970-01-01T00:00:00Z"]);
    assert_eq!(seeked.assert_success().json()["stats"]["lag_total"], 4);
    group(&["seek", "jobs", "billing", "offset:x"]).assert_refused("not an offset");
    group(&["seek", "jobs", "billing", "latest", "--partition", "9"])
        .assert_error(1, "error: partition_out_of_range: ");

    group(&["delete", "jobs", "billing"]).assert_success();
    group(&["show", "jobs", "billing"]).assert_error(1, "error: group_not_found: ");
    group(&["read", "jobs", "billing", "--consumer", "w1"])
        .assert_error(1, "error: group_not_found: ");
}
