//! The data dir as an operator meets it: messages survive a restart, a second broker cannot
//! open the same dir, corruption in the middle of the log stops start-up with the file and
//! offset, `baton storage verify` reports it, and `--repair` starts with what comes before it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{spawn_baton, temp_dir, Serve, Server, ServerLog, BATON};

/// A fresh directory the test owns and removes.
fn data_dir() -> PathBuf {
    let dir = temp_dir("storage");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `baton serve` on `data_dir`; `Err(stderr)` when it exits instead of becoming ready.
fn start(data_dir: &Path, extra: &[&str]) -> Result<Server, String> {
    spawn_baton(
        Serve::new()
            .data_dir(data_dir)
            .args(extra)
            .log(ServerLog::Capture),
    )
}

fn client(url: &str, args: &[&str]) -> Output {
    Command::new(BATON)
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .unwrap()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn visible(url: &str, queue: &str) -> u64 {
    json(&client(url, &["queue", "show", queue]))["stats"]["visible"]
        .as_u64()
        .unwrap()
}

#[test]
fn messages_survive_restarts_and_corruption_is_reported_then_repaired() {
    let dir = data_dir();
    let server = start(&dir, &[]).unwrap();
    json(&client(&server.url, &["queue", "create", "jobs"]));
    for i in 0..30 {
        json(&client(
            &server.url,
            &["send", "jobs", &format!("job number {i}")],
        ));
    }
    let got = json(&client(
        &server.url,
        &["recv", "jobs", "--max", "5", "--ack"],
    ));
    assert_eq!(got["messages"].as_array().unwrap().len(), 5);

    // A second broker on the same data dir is refused.
    let second = start(&dir, &[]).err().expect("the data dir is locked");
    assert!(
        second.contains("in use by another baton process"),
        "{second}"
    );

    // kill -9 keeps what was acknowledged.
    drop(server);
    let server = start(&dir, &[]).unwrap();
    assert_eq!(visible(&server.url, "jobs"), 25);
    drop(server);

    let report = json(
        &Command::new(BATON)
            .args(["storage", "verify", "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap(),
    );
    assert_eq!(
        (report["queues"].as_u64(), report["messages"].as_u64()),
        (Some(1), Some(25))
    );

    // Damage a record in the middle of the log: the 10th send's body.
    let segment = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let needle = b"job number 9";
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();

    let verify = Command::new(BATON)
        .args(["storage", "verify", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!verify.status.success());
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(
        stderr.contains(&segment.display().to_string()) && stderr.contains("at byte"),
        "{stderr}"
    );

    let refused = start(&dir, &[])
        .err()
        .expect("corruption in the middle stops start-up");
    assert!(
        refused.contains("corrupt record") && refused.contains("--repair"),
        "{refused}"
    );

    // --repair cuts the log at the damaged record: what came before it is there.
    let server = start(&dir, &["--repair"]).unwrap();
    assert_eq!(
        visible(&server.url, "jobs"),
        9,
        "the 9 sends before the damaged one"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_memory_engine_keeps_nothing_and_bad_settings_are_refused() {
    let dir = data_dir();
    let server = start(&dir, &["--engine", "memory"]).unwrap();
    json(&client(&server.url, &["queue", "create", "jobs"]));
    drop(server);
    let server = start(&dir, &["--engine", "memory"]).unwrap();
    assert!(json(&client(&server.url, &["queue", "list"]))["queues"]
        .as_array()
        .unwrap()
        .is_empty());
    drop(server);
    let refused = start(&dir, &["--fsync", "sometimes"])
        .err()
        .expect("bad fsync policy");
    assert!(refused.contains("fsync"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}
