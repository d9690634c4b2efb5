//! The CLI and `baton bench` against a broker with TLS and keys, as an operator with a
//! private CA runs them: `--cacert` (or `BATON_CACERT`) trusts the CA; without it the
//! certificate is refused and the command says why; `baton bench` sends over HTTPS and over
//! the framed protocol on TLS, with a key.

use std::path::Path;

use crate::common::{spawn_baton, temp_dir, Serve, Server, ServerLog};

#[path = "../../../baton-server/tests/support/certs.rs"]
mod certs;

const ADMIN: &str = "bk_tls_clients_admin_0123456789abcdef";

fn start(dir: &Path) -> Server {
    let ca = certs::Ca::new("cli test CA");
    let leaf = ca.leaf("baton");
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.join("cert.pem"), &leaf.cert).unwrap();
    std::fs::write(dir.join("key.pem"), &leaf.key).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    spawn_baton(
        Serve::new()
            .args(&[
                "--tls-cert-file",
                cert.to_str().unwrap(),
                "--tls-key-file",
                key.to_str().unwrap(),
            ])
            .env(&[("BATON_ADMIN_KEY", ADMIN)])
            .log(ServerLog::Capture),
    )
    .unwrap()
}

#[test]
fn cli_and_bench_trust_a_private_ca_with_cacert() {
    let dir = temp_dir("tls-clients");
    std::fs::create_dir_all(&dir).unwrap();
    let server = start(&dir);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();

    // Without the CA the certificate is not trusted, and the error says so.
    let refused = server.run(&["--key", ADMIN, "queue", "list"]);
    refused.assert_error(1, "cannot reach Baton at https://");
    assert!(refused.stderr.contains("certificate"), "{}", refused.stderr);
    server
        .run(&["--cacert", "/no/such/ca.pem", "queue", "list"])
        .assert_error(1, "cannot read --cacert /no/such/ca.pem");
    let not_pem = dir.join("key.pem");
    server
        .run(&["--cacert", not_pem.to_str().unwrap(), "queue", "list"])
        .assert_error(1, "--cacert holds no PEM certificate");

    server
        .run(&["--cacert", ca, "--key", ADMIN, "queue", "create", "orders"])
        .assert_success();
    server
        .run(&["--cacert", ca, "--key", ADMIN, "send", "orders", "over tls"])
        .assert_success();
    let got = server
        .run(&["--cacert", ca, "--key", ADMIN, "recv", "orders", "--ack"])
        .assert_success()
        .json();
    assert_eq!(got["messages"][0]["body"], "over tls");

    for api in ["native", "wire"] {
        let report = server
            .run(&[
                "--cacert",
                ca,
                "--key",
                ADMIN,
                "bench",
                "produce",
                "--api",
                api,
                "--producers",
                "2",
                "--messages",
                "200",
                "--duration-s",
                "30",
                "--no-progress",
                "--json",
            ])
            .assert_success()
            .json();
        assert_eq!(
            (report["sent"].as_u64(), report["errors"].as_u64()),
            (Some(200), Some(0)),
            "{api}: {report}"
        );
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
