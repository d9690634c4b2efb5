//! Encryption at rest as an operator meets it: `baton storage keygen` writes a key file, a
//! broker started with it leaves no body in plain text on disk and reads it back after
//! `kill -9`, a second key rotates, `baton storage verify` names the keys a data dir needs,
//! and a start without them is refused with the key's id.

use std::path::{Path, PathBuf};

use crate::common::{baton, spawn_baton, temp_dir, Serve, Server, ServerLog};

fn start(data_dir: &Path, key_file: &Path) -> Result<Server, String> {
    spawn_baton(
        Serve::new()
            .data_dir(data_dir)
            .args(&["--encryption-key-file", key_file.to_str().unwrap()])
            .log(ServerLog::Capture),
    )
}

fn keygen(key_file: &Path) -> u64 {
    let out = baton(
        &[
            "storage",
            "keygen",
            "--key-file",
            key_file.to_str().unwrap(),
        ],
        "",
    );
    out.assert_success().json()["key_id"].as_u64().unwrap()
}

fn verify(data_dir: &Path, key_file: Option<&Path>) -> crate::common::Output {
    let mut args = vec![
        "storage",
        "verify",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    if let Some(key_file) = key_file {
        args.extend(["--encryption-key-file", key_file.to_str().unwrap()]);
    }
    baton(&args, "")
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

fn bodies(server: &Server, queue: &str) -> Vec<String> {
    let got = server
        .run(&["recv", queue, "--max", "10", "--wait-ms", "0"])
        .assert_success()
        .json();
    let mut bodies: Vec<String> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    bodies.sort();
    bodies
}

#[test]
fn an_encrypted_data_dir_keeps_no_plain_text_survives_kill_9_and_rotates_keys() {
    let keys_dir = temp_dir("encryption-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let key_file = keys_dir.join("baton.keys");
    let data_dir = temp_dir("encryption-data");
    std::fs::create_dir_all(&data_dir).unwrap();

    assert_eq!(keygen(&key_file), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    }

    let server = start(&data_dir, &key_file).unwrap();
    server.cli("queue create orders").assert_success();
    server
        .run(&["send", "orders", "secret order one"])
        .assert_success();
    server
        .cli("stream create audit --partitions 1")
        .assert_success();
    server
        .run(&["stream", "append", "audit", "secret audit record"])
        .assert_success();
    server.kill();
    assert_eq!(
        files_containing(&data_dir, b"secret"),
        Vec::<PathBuf>::new()
    );

    // Without the key file the data dir cannot be read, and verify says which key it needs.
    verify(&data_dir, None).assert_error(1, "cannot be decrypted without a key file (key ids {1})");
    let report = verify(&data_dir, Some(&key_file)).assert_success().json();
    assert_eq!(report["messages"], 1, "{report}");
    assert_eq!(report["encryption"]["plain_frames"], 0, "{report}");
    assert!(
        report["encryption"]["sealed_frames_by_key"]["1"]
            .as_u64()
            .unwrap()
            > 0
    );

    // A second key seals from the next start; the first keeps opening what it sealed.
    assert_eq!(keygen(&key_file), 2);
    let server = start(&data_dir, &key_file).unwrap();
    server
        .run(&["send", "orders", "secret order two"])
        .assert_success();
    let read = server.run(&["stream", "read", "audit", "--from-offset", "0"]);
    read.assert_success();
    assert!(
        read.stdout.contains("secret audit record"),
        "{}",
        read.stdout
    );
    server.kill();
    assert_eq!(
        files_containing(&data_dir, b"secret"),
        Vec::<PathBuf>::new()
    );
    let report = verify(&data_dir, Some(&key_file)).assert_success().json();
    let by_key = &report["encryption"]["sealed_frames_by_key"];
    assert!(
        by_key["1"].as_u64().unwrap() > 0 && by_key["2"].as_u64().unwrap() > 0,
        "{report}"
    );

    // A key file without key 1 is refused at start, naming the key; nothing is cut.
    let only_two = keys_dir.join("only-two.keys");
    let text = std::fs::read_to_string(&key_file).unwrap();
    let second = text
        .lines()
        .filter(|l| l.starts_with("2 "))
        .collect::<Vec<_>>();
    std::fs::write(&only_two, format!("{}\n", second[0])).unwrap();
    let refused = start(&data_dir, &only_two).err().unwrap();
    assert!(
        refused.contains("encrypted under key 1, which the key file does not hold"),
        "{refused}"
    );
    let missing = start(&data_dir, &keys_dir.join("no-such.keys"))
        .err()
        .unwrap();
    assert!(
        missing.contains("cannot read the encryption key file"),
        "{missing}"
    );

    let server = start(&data_dir, &key_file).unwrap();
    assert_eq!(
        bodies(&server, "orders"),
        ["secret order one", "secret order two"]
    );
    server.kill();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_dir_all(&keys_dir);
}
