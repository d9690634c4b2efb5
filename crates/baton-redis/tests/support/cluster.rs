//! A Redis Cluster of its own for a test binary: six `redis-server` processes (three masters,
//! three replicas) on free loopback ports in a temporary directory, `appendonly yes` with
//! `appendfsync everysec` ([`shared`]) or `appendonly no` ([`shared_without_appendonly`], for
//! the start-up check of `baton serve --engine redis`), created with
//! `redis-cli --cluster create`. A watchdog shell kills them (by the pid files they write)
//! and removes the directory once the test process is gone, so they never outlive it. The
//! machine's own Redis (6379) is never touched.
//!
//! Shared by the engine's tests (`tests/it`, `tests/faults`) and the `baton` binary's
//! (`baton-cli/tests/cli/cluster_mode.rs`), each including this file with `#[path]`.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub ports: Vec<u16>,
    dir: PathBuf,
    appendonly: bool,
    children: Mutex<HashMap<u16, Child>>,
    /// Outlives the test process on purpose: it cleans up after it.
    _watchdog: Child,
}

/// The binary's cluster, started by the first test that asks.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(true))
}

/// A second cluster whose nodes run without the append-only file (`appendonly no`), started
/// by the first test that asks.
pub fn shared_without_appendonly() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| Cluster::start(false))
}

/// Held while a cluster picks its ports and starts its nodes, so two clusters of one process
/// never pick the same free ports.
static STARTING: Mutex<()> = Mutex::new(());

/// A namespace no other engine of this process uses.
pub fn fresh_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst),
        uuid::Uuid::new_v4().simple()
    )
}

fn port_pair_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
        && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
}

fn free_ports(n: usize) -> Vec<u16> {
    let seed =
        (std::process::id() as u64 * 7919 + uuid::Uuid::new_v4().as_u64_pair().0 % 1000) % 9000;
    let mut ports = Vec::new();
    let mut port = 20_000 + seed as u16;
    while ports.len() < n {
        if port_pair_free(port) {
            ports.push(port);
        }
        port += 1;
        assert!(port < 30_000, "no free ports");
    }
    ports
}

fn spawn_watchdog(dir: &std::path::Path) -> Child {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         for f in {dir}/*/redis.pid; do [ -f \"$f\" ] && kill -9 \"$(cat \"$f\")\" 2>/dev/null; done; \
         sleep 1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

impl Cluster {
    fn start(appendonly: bool) -> Cluster {
        let dir = std::env::temp_dir().join(format!("baton-redis-{}", fresh_namespace()));
        std::fs::create_dir_all(&dir).unwrap();
        let starting = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let cluster = Cluster {
            ports: free_ports(6),
            _watchdog: spawn_watchdog(&dir),
            dir,
            appendonly,
            children: Mutex::new(HashMap::new()),
        };
        for &port in &cluster.ports {
            cluster.start_node(port);
        }
        for &port in &cluster.ports {
            cluster.wait_answers(port);
        }
        drop(starting);
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_healthy(Duration::from_secs(60));
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Starts (or restarts, with its data and cluster config) the node on `port`.
    pub fn start_node(&self, port: u16) {
        let dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let conf = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ncluster-enabled yes\n\
             cluster-config-file nodes.conf\ncluster-node-timeout 2000\n\
             cluster-replica-validity-factor 0\nappendonly {appendonly}\nappendfsync everysec\n\
             save \"\"\ndir {dir}\npidfile {dir}/redis.pid\nlogfile {dir}/redis.log\n",
            appendonly = if self.appendonly { "yes" } else { "no" },
            dir = dir.display()
        );
        let path = dir.join("redis.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("redis-server")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.lock().unwrap().insert(port, child);
    }

    /// Sends `signal` (`KILL`, `TERM`) to the node on `port` and waits for it to exit.
    pub fn stop_node(&self, port: u16, signal: &str) {
        let child = self.children.lock().unwrap().remove(&port);
        if let Some(mut child) = child {
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status()
                .unwrap();
            child.wait().unwrap();
        }
    }

    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn wait_answers(&self, port: u16) {
        let started = Instant::now();
        while !self.cli(port, &["ping"]).contains("PONG") {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "node {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running node says `cluster_state:ok` and every master has a replica
    /// connected (so writes can be confirmed by `WAIT 1`).
    pub fn wait_healthy(&self, within: Duration) {
        let started = Instant::now();
        loop {
            let running: Vec<u16> = self.children.lock().unwrap().keys().copied().collect();
            let ok = running.iter().all(|&port| {
                let info = self.cli(port, &["cluster", "info"]);
                let replication = self.cli(port, &["info", "replication"]);
                info.contains("cluster_state:ok")
                    && (replication.contains("role:slave")
                        && replication.contains("master_link_status:up")
                        || replication.contains("connected_slaves:1"))
            });
            if ok {
                return;
            }
            assert!(
                started.elapsed() < within,
                "the cluster did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port of the master that serves `key`'s slot, as `port`'s node sees it.
    pub fn master_of(&self, key: &str, asking: u16) -> Option<u16> {
        let slot: u16 = self
            .cli(asking, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .ok()?;
        for line in self.cli(asking, &["cluster", "nodes"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| {
                let mut bounds = range.split('-').filter_map(|b| b.parse::<u16>().ok());
                match (bounds.next(), bounds.next()) {
                    (Some(lo), Some(hi)) => lo <= slot && slot <= hi,
                    (Some(one), None) => one == slot,
                    _ => false,
                }
            });
            if owns {
                let address = fields[1].split('@').next()?;
                return address.rsplit(':').next()?.parse().ok();
            }
        }
        None
    }
}
