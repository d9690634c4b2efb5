//! End-to-end tests of `baton stream ...` and `baton stream group ...`: the real binary
//! against a real `baton serve` on a free port.

use std::process::{Command, Stdio};

use crate::common::{
    read_on_thread, table_rows, wait_with_timeout, Server, BATON, COMMAND_TIMEOUT,
};
use serde_json::{json, Value};

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

fn ids(records: &Value) -> Vec<String> {
    records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn streams_are_created_listed_shown_and_deleted() {
    let server = Server::start();
    let created = server.cli("stream create clicks --partitions 2 --retention-ms 86400000");
    let created = created.assert_success().json();
    assert_eq!(created["name"], "clicks");
    assert_eq!(created["attributes"]["partitions"], 2);
    assert_eq!(created["attributes"]["retention_ms"], 86_400_000);
    assert_eq!(created["attributes"]["max_records"], Value::Null);
    // The same attributes again change nothing; others are refused by the server.
    server
        .cli("stream create clicks --partitions 2 --retention-ms 86400000")
        .assert_success();
    server
        .cli("stream create clicks --partitions 3")
        .assert_error(1, "error: stream_exists: ");
    server
        .cli("stream create other --partitions 0")
        .assert_refused("--partitions");
    server
        .cli("stream create other --partitions 1025")
        .assert_refused("--partitions");
    server
        .cli("stream create bad/name --partitions 1")
        .assert_error(1, "error: invalid_name: ");
    server
        .cli("stream append clicks a b --partition 1")
        .assert_success();
    server
        .cli("stream group create clicks billing --start earliest")
        .assert_success();

    let listed = server.cli("stream list").assert_success().json();
    let streams = listed["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{listed}");
    assert_eq!(streams[0]["stats"]["records"], 2);
    let table = server.cli("stream list --table");
    let rows = table_rows(&table.assert_success().stdout, "NAME PARTITIONS RECORDS");
    assert_eq!(
        rows,
        [["clicks", "2", "2", "2", "1", "86400000", "-", "-"]],
        "2 bytes, 1 group, no byte or record bound"
    );

    let shown = server.cli("stream show clicks").assert_success().json();
    let partitions = &shown["stats"]["partitions"];
    assert_eq!(partitions[1]["next_offset"], 2);
    assert_eq!(partitions[0]["last_offset"], Value::Null);
    assert_eq!(shown["stats"]["groups"][0]["name"], "billing");
    let table = server.cli("stream show clicks --table");
    let stdout = &table.assert_success().stdout;
    let rows = table_rows(
        stdout,
        "PARTITION FIRST_OFFSET NEXT_OFFSET LAST_OFFSET RECORDS BYTES",
    );
    assert_eq!(
        rows,
        [
            ["0", "0", "0", "-", "0", "0"],
            ["1", "0", "2", "1", "2", "2"]
        ]
    );
    let groups = stdout.split_once("\n\n").unwrap().1;
    let rows = table_rows(groups, "GROUP MODE START LAG PENDING CONSUMERS");
    assert_eq!(
        rows,
        [["billing", "partitioned", "earliest", "2", "0", "0"]]
    );

    server.cli("stream delete clicks").assert_success();
    server
        .cli("stream show clicks")
        .assert_error(1, "error: stream_not_found: ");
    server
        .cli("stream delete clicks")
        .assert_error(1, "error: stream_not_found: ");
    let listed = server.cli("stream list").assert_success().json();
    assert_eq!(listed["streams"], json!([]));
}

#[test]
fn records_are_appended_by_key_partition_or_producer_and_read_from_an_offset_or_a_time() {
    let server = Server::start();
    server
        .cli("stream create clicks --partitions 2")
        .assert_success();
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
    let placed = offsets(&appended.assert_success().json());
    let partition = placed[0].0;
    assert_eq!(
        placed,
        [(partition, 0), (partition, 1)],
        "one key, one partition"
    );
    let other = 1 - partition;
    let piped = server.run_with_stdin(
        &[
            "stream",
            "append",
            "clicks",
            "-",
            "--partition",
            &other.to_string(),
        ],
        "from stdin\n",
    );
    assert_eq!(offsets(&piped.assert_success().json()), [(other, 0)]);
    // An idempotent producer's retry lands once and answers the original offsets.
    let once =
        format!("stream append clicks once --partition {other} --producer-id p --sequence 1");
    let first = server.cli(&once).assert_success().json();
    assert_eq!(offsets(&first), [(other, 1)]);
    assert_eq!(
        offsets(&server.cli(&once).assert_success().json()),
        [(other, 1)]
    );
    server
        .cli("stream append clicks x --producer-id p")
        .assert_refused("--sequence");
    server
        .cli("stream append clicks - -")
        .assert_error(1, "only one VALUE can be `-`");
    server
        .cli("stream append clicks x --header novalue")
        .assert_refused("KEY=VALUE");
    server
        .cli("stream append clicks x --partition 2")
        .assert_error(1, "error: partition_out_of_range: ");

    let read = server.cli(&format!(
        "stream read clicks --partition {partition} --from-offset 1"
    ));
    let read = read.assert_success().json();
    assert_eq!(values(&read), ["clicked buy"]);
    assert_eq!(read["next_offset"], 2);
    assert_eq!(read["records"][0]["key"], "user-7");
    assert_eq!(read["records"][0]["headers"], json!({"source": "web"}));
    let timestamp = read["records"][0]["timestamp"].as_u64().unwrap();

    // A time: the first record at or after it, in milliseconds or RFC 3339.
    let from_time = |time: &str, max: u32| {
        let line =
            format!("stream read clicks --partition {partition} --from-time {time} --max {max}");
        values(&server.cli(&line).assert_success().json())
    };
    assert_eq!(from_time("1970-01-01T00:00:00Z", 1), ["opened /pricing"]);
    assert_eq!(from_time("0", 100), ["opened /pricing", "clicked buy"]);
    assert!(from_time(&(timestamp + 60_000).to_string(), 100).is_empty());
    assert!(from_time("2999-01-01T02:00:00+02:00", 100).is_empty());

    let table = server.cli(&format!(
        "stream read clicks --partition {other} --from-offset 0 --table"
    ));
    let stdout = &table.assert_success().stdout;
    let rows = table_rows(stdout, "PARTITION OFFSET TIMESTAMP KEY HEADERS VALUE");
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0][..2], [other.to_string(), "0".to_string()]);
    assert!(rows[0][2].ends_with('Z'), "an RFC 3339 time: {stdout}");
    // The newline of the value read from stdin is shown escaped, on the record's own line.
    assert_eq!(rows[0][3..], ["-", "-", "from", r"stdin\n"]);
    assert_eq!(rows[1][5], "once");
}

#[test]
fn bad_read_arguments_are_refused_and_server_errors_reported() {
    let server = Server::start();
    server
        .cli("stream create clicks --partitions 1")
        .assert_success();
    // Never sent to the server.
    server
        .cli("stream read clicks")
        .assert_refused("--from-offset");
    server
        .cli("stream read clicks --from-offset 0 --from-time 0")
        .assert_refused("cannot be used with");
    server
        .cli("stream read clicks --from-time yesterday")
        .assert_refused("RFC 3339");
    server
        .cli("stream read clicks --from-time 2024-02-30T00:00:00Z")
        .assert_refused("not a valid date");
    server
        .cli("stream read clicks --from-offset 0 --max 0")
        .assert_refused("--max");
    server
        .cli("stream read clicks --from-offset 0 --wait-ms 20001")
        .assert_refused("--wait-ms");
    // What only the server knows, it reports precisely.
    server
        .cli("stream read clicks --partition 7 --from-offset 0")
        .assert_error(1, "error: partition_out_of_range: ");
    server
        .cli("stream read clicks --from-offset 5")
        .assert_error(1, "error: offset_out_of_range: ");
    let missing = server.cli("stream read nope --from-offset 0");
    missing.assert_error(1, "error: stream_not_found: ");
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
}

#[test]
fn follow_prints_records_as_json_lines_and_fails_when_the_stream_goes() {
    let server = Server::start();
    server
        .cli("stream create clicks --partitions 1")
        .assert_success();
    server.cli("stream append clicks a b c").assert_success();
    let followed = server.cli("stream follow clicks --partition 0 --from-offset 1 --count 2");
    let lines = followed.assert_success().json_lines();
    assert_eq!(lines.len(), 2, "{}", followed.stdout);
    assert_eq!(
        (&lines[0]["type"], &lines[0]["offset"], &lines[0]["value"]),
        (&json!("record"), &json!(1), &json!("b"))
    );
    assert_eq!(lines[1]["value"], "c");
    server
        .cli("stream follow nope")
        .assert_error(1, "error: stream_not_found: ");
    server
        .cli("stream follow clicks --from-offset 9")
        .assert_error(1, "error: offset_out_of_range: ");

    // Without --count it runs until the server ends the stream.
    let mut follower = Command::new(BATON)
        .args([
            "--url",
            &server.url,
            "stream",
            "follow",
            "clicks",
            "--from-offset",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_on_thread(follower.stdout.take().unwrap());
    let stderr = read_on_thread(follower.stderr.take().unwrap());
    crate::common::eventually("the follower connects", || {
        server
            .get_text("/metrics")
            .lines()
            .any(|line| line == "baton_stream_live_followers{stream=\"clicks\"} 1")
            .then_some(())
    });
    server.cli("stream delete clicks").assert_success();
    let status = wait_with_timeout(&mut follower, COMMAND_TIMEOUT).expect("the follower ends");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert_eq!(status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("error: the server ended the stream: stream_not_found: "),
        "{stderr}"
    );
    let values: Vec<String> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["value"].to_string())
        .collect();
    assert_eq!(values, [r#""a""#, r#""b""#, r#""c""#]);
}

#[test]
fn consumer_groups_are_created_shown_seeked_and_deleted() {
    let server = Server::start();
    server
        .cli("stream create jobs --partitions 1")
        .assert_success();
    server.cli("stream append jobs a b c d").assert_success();
    let created = server.cli("stream group create jobs billing --start earliest");
    let created = created.assert_success().json();
    assert_eq!(
        (&created["name"], &created["start"], &created["mode"]),
        (&json!("billing"), &json!("earliest"), &json!("partitioned"))
    );
    assert_eq!(created["stats"]["lag_total"], 4);
    server
        .cli("stream group create jobs billing --start earliest --mode shared")
        .assert_error(1, "error: group_exists: ");
    let audit = server.cli(
        "stream group create jobs audit --start time:2999-01-01T00:00:00Z --mode shared \
         --session-timeout-ms 1000",
    );
    let audit = audit.assert_success().json();
    assert_eq!(audit["start"], json!({"time": 32_472_144_000_000_u64}));
    assert_eq!(
        (&audit["mode"], &audit["session_timeout_ms"]),
        (&json!("shared"), &json!(1000))
    );
    server
        .cli("stream group create jobs x --start first")
        .assert_refused("`earliest`");
    server
        .cli("stream group create jobs x")
        .assert_refused("--start");
    server
        .cli("stream group create jobs x --start latest --session-timeout-ms 5")
        .assert_refused("--session-timeout-ms");
    server
        .cli("stream group create nope x --start latest")
        .assert_error(1, "error: stream_not_found: ");

    let seek = |position: &str| {
        let output = server.cli(&format!("stream group seek jobs billing {position}"));
        output.assert_success().json()["stats"]["lag"].clone()
    };
    assert_eq!(seek("offset:3 --partition 0"), json!([1]));
    assert_eq!(seek("latest"), json!([0]));
    assert_eq!(seek("time:1970-01-01T00:00:00Z"), json!([4]));
    assert_eq!(seek("earliest"), json!([4]));
    server
        .cli("stream group seek jobs billing offset:x")
        .assert_refused("not an offset");
    server
        .cli("stream group seek jobs billing latest --partition 9")
        .assert_error(1, "error: partition_out_of_range: ");

    let shown = server
        .cli("stream group show jobs billing")
        .assert_success()
        .json();
    assert_eq!(
        (&shown["stats"]["lag_total"], &shown["stats"]["pending"]),
        (&json!(4), &json!(0))
    );
    let table = server.cli("stream group show jobs billing --table");
    let stdout = &table.assert_success().stdout;
    let rows = table_rows(
        stdout,
        "GROUP MODE START SESSION_TIMEOUT_MS LAG PENDING CONSUMERS",
    );
    assert_eq!(
        rows,
        [["billing", "partitioned", "earliest", "30000", "4", "0", "0"]]
    );
    let partitions = stdout.split_once("\n\n").unwrap().1;
    assert_eq!(
        table_rows(partitions, "PARTITION LAG OWNER"),
        [["0", "4", "-"]]
    );

    server
        .cli("stream group delete jobs billing")
        .assert_success();
    server
        .cli("stream group show jobs billing")
        .assert_error(1, "error: group_not_found: ");
    server
        .cli("stream group delete jobs billing")
        .assert_error(1, "error: group_not_found: ");
}

#[test]
fn consumers_read_list_pending_and_ack() {
    let server = Server::start();
    server
        .cli("stream create jobs --partitions 1")
        .assert_success();
    server.cli("stream append jobs a b c").assert_success();
    server
        .cli("stream group create jobs billing --start earliest")
        .assert_success();

    let read = server.cli("stream group read jobs billing --consumer w1 --max 2");
    let read = read.assert_success().json();
    assert_eq!(ids(&read), ["0-0", "0-1"]);
    assert_eq!(
        (
            &read["records"][0]["delivery_count"],
            &read["records"][1]["value"]
        ),
        (&json!(1), &json!("b"))
    );

    let pending = server
        .cli("stream group pending jobs billing")
        .assert_success()
        .json();
    assert_eq!(
        (&pending["count"], &pending["pending"][0]["consumer"]),
        (&json!(2), &json!("w1"))
    );
    let one = server.cli("stream group pending jobs billing --consumer w1 --max 1");
    let one = one.assert_success().json();
    assert_eq!(
        (&one["count"], one["pending"].as_array().unwrap().len()),
        (&json!(2), 1)
    );
    let table = server.cli("stream group pending jobs billing --table");
    let rows = table_rows(
        &table.assert_success().stdout,
        "ID CONSUMER IDLE_MS DELIVERIES",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (&rows[1][0][..], &rows[1][1][..], &rows[1][3][..]),
        ("0-1", "w1", "1")
    );
    server
        .cli("stream group pending jobs billing --max 1001")
        .assert_refused("--max");
    server
        .cli("stream group pending jobs billing --consumer ghost")
        .assert_error(1, "error: consumer_not_found: ");

    let acked = server
        .cli("stream group ack jobs billing 0-0")
        .assert_success()
        .json();
    assert_eq!(acked, json!({"results": [{"ok": true}]}));
    // One item fails, the other is acked; every result is on stdout, the failure on stderr.
    let partly = server.cli("stream group ack jobs billing 0-0 0-1");
    partly.assert_error(1, "error: ack of item 0: record_not_pending: ");
    assert!(
        partly.stderr.contains("1 of 2 acks failed"),
        "{}",
        partly.stderr
    );
    assert_eq!(partly.json()["results"][1], json!({"ok": true}));
    server
        .cli("stream group ack jobs billing 0-1x")
        .assert_refused("partition-offset");
    server
        .cli("stream group ack jobs billing")
        .assert_refused("<ID>");
}

#[test]
fn read_with_ack_and_claim_take_records_off_a_consumers_pending_list() {
    let server = Server::start();
    server
        .cli("stream create jobs --partitions 1")
        .assert_success();
    server.cli("stream append jobs a b c").assert_success();
    server
        .cli("stream group create jobs billing --start offset:2")
        .assert_success();

    // --ack acknowledges what was printed.
    let read = server.cli("stream group read jobs billing --consumer w1 --ack --table");
    let rows = table_rows(
        &read.assert_success().stdout,
        "ID PARTITION OFFSET TIMESTAMP DELIVERIES",
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (&rows[0][0][..], rows[0].last().map(String::as_str)),
        ("0-2", Some("c"))
    );
    let pending = server
        .cli("stream group pending jobs billing")
        .assert_success()
        .json();
    assert_eq!(pending["count"], 0, "{pending}");

    // Left pending by w1, taken over by w2.
    server.cli("stream append jobs d").assert_success();
    let read = server.cli("stream group read jobs billing --consumer w1");
    assert_eq!(ids(&read.assert_success().json()), ["0-3"]);
    let claimed =
        server.cli("stream group claim jobs billing --consumer w2 --min-idle-ms 0 --table");
    let rows = table_rows(
        &claimed.assert_success().stdout,
        "ID PARTITION OFFSET TIMESTAMP DELIVERIES",
    );
    assert_eq!(
        (rows.len(), &rows[0][0][..], &rows[0][4][..]),
        (1, "0-3", "2")
    );
    let pending = server
        .cli("stream group pending jobs billing")
        .assert_success()
        .json();
    assert_eq!(pending["pending"][0]["consumer"], "w2", "{pending}");
    let none = server.cli("stream group claim jobs billing --consumer w3 --min-idle-ms 3600000");
    assert_eq!(none.assert_success().json(), json!({"records": []}));
    server
        .cli("stream group claim jobs billing --consumer w3")
        .assert_refused("--min-idle-ms");
    server
        .cli("stream group read jobs nope --consumer w1")
        .assert_error(1, "error: group_not_found: ");
}
