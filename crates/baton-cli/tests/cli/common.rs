//! What every end-to-end test of the `baton` binary needs: a real `baton serve` on a free
//! port, the binary run as a user or a script would run it, plain HTTP calls for setting up
//! what a test does not drive through the CLI, and a local HTTP endpoint that push and
//! callback deliveries can reach.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const BATON: &str = env!("CARGO_BIN_EXE_baton");
/// Budget for the server to print its "listening on" line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget for one client command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget for the server to stop after SIGTERM.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(20);

/// How a test runs `baton serve`: everything but the port, which is always a free one on
/// 127.0.0.1. The runner's own `BATON_*` variables are never passed on, so the environment a
/// test is run in cannot change what it checks; `RUST_LOG` is `warn` unless `env` says
/// otherwise.
#[derive(Debug, Clone, Default)]
pub struct Serve {
    data_dir: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: ServerLog,
}

/// Where the server's stderr (its log) goes.
#[derive(Debug, Clone, Default)]
pub enum ServerLog {
    /// The test's own stderr, so a failing test shows it.
    #[default]
    Inherit,
    Discard,
    /// Kept in memory (read on a thread, so the pipe never fills), returned when the server
    /// does not start.
    Capture,
    /// Appended to this file.
    File(PathBuf),
}

impl Serve {
    pub fn new() -> Serve {
        Serve::default()
    }

    /// Runs on `data_dir`, which the test owns (kept when the server goes); without it the
    /// server gets a fresh directory, removed when it is dropped.
    pub fn data_dir(mut self, data_dir: &Path) -> Serve {
        self.data_dir = Some(data_dir.to_path_buf());
        self
    }

    /// More `baton serve` arguments.
    pub fn args(mut self, args: &[&str]) -> Serve {
        self.args.extend(args.iter().map(|arg| arg.to_string()));
        self
    }

    /// More environment variables (`BATON_<KEY>` settings, `RUST_LOG`).
    pub fn env(mut self, env: &[(&str, &str)]) -> Serve {
        let pairs = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        self.env.extend(pairs);
        self
    }

    pub fn log(mut self, log: ServerLog) -> Serve {
        self.log = log;
        self
    }
}

/// Starts `baton serve` as `serve` says and waits until `GET /ready` answers 200 (the
/// listening line comes before recovery ends).
///
/// # Errors
/// The server's stderr (with [`ServerLog::Capture`]; otherwise what is known of the exit)
/// when it exits, or prints something else than its listening line, instead of becoming ready.
pub fn spawn_baton(serve: Serve) -> Result<Server, String> {
    let owns_data_dir = serve.data_dir.is_none();
    let data_dir = serve.data_dir.unwrap_or_else(|| temp_dir("server"));
    let mut command = Command::new(BATON);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .args(&serve.args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BATON_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn").envs(serve.env);
    let stderr = match &serve.log {
        ServerLog::Inherit => Stdio::inherit(),
        ServerLog::Discard => Stdio::null(),
        ServerLog::Capture => Stdio::piped(),
        ServerLog::File(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            Stdio::from(file)
        }
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let captured = child.stderr.take().map(read_on_thread);
    let (line_tx, line_rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = line_tx.send(result);
    });
    // Construct the guard before waiting, so a startup failure still kills the child.
    let mut server = Server {
        child,
        url: String::new(),
        data_dir,
        owns_data_dir,
        captured,
    };
    let line = line_rx
        .recv_timeout(STARTUP_TIMEOUT)
        .expect("no `listening on` line in time")
        .unwrap();
    let Some(url) = line.trim().strip_prefix("baton listening on ") else {
        return Err(server.failure(&format!("first line {line:?}")));
    };
    assert!(
        url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
        "unexpected url {url:?}"
    );
    server.url = url.to_string();
    server.wait_ready()?;
    Ok(server)
}

/// A running `baton serve`; killed (and its data directory removed) when dropped, so a failed
/// assertion does not leave it behind.
pub struct Server {
    child: Child,
    pub url: String,
    data_dir: PathBuf,
    /// Whether dropping the server removes `data_dir` (not when the test gave it).
    owns_data_dir: bool,
    /// The reader of stderr, with [`ServerLog::Capture`].
    captured: Option<thread::JoinHandle<String>>,
}

impl Server {
    /// A server on a fresh data directory.
    pub fn start() -> Server {
        Server::started(spawn_baton(Serve::new()))
    }

    /// A server with these extra environment variables (`BATON_<KEY>` settings).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Server::started(spawn_baton(Serve::new().env(env)))
    }

    /// A server on `data_dir`, which the test owns (it is kept when the server goes), with
    /// extra `serve` arguments and environment variables.
    pub fn start_in(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::started(spawn_baton(
            Serve::new().data_dir(data_dir).args(args).env(env),
        ))
    }

    fn started(spawned: Result<Server, String>) -> Server {
        spawned.unwrap_or_else(|error| panic!("baton serve did not start: {error}"))
    }

    /// `kill -9`: no shutdown, no final sync. Returns when the process is gone (it holds the
    /// data directory's lock).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Why the server did not start: its stderr once it exited, when captured.
    fn failure(&mut self, what: &str) -> String {
        let exited = wait_with_timeout(&mut self.child, SHUTDOWN_TIMEOUT);
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        match self.captured.take() {
            Some(reader) => reader.join().unwrap(),
            None => format!("{what}; exit status {exited:?}"),
        }
    }

    /// Waits until `GET /ready` answers 200; a 503 meanwhile must say it is not ready.
    fn wait_ready(&mut self) -> Result<(), String> {
        let address = self.url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return Err(self.failure("exited before it was ready"));
            }
            if let Some(address) = self.url.strip_prefix("https://") {
                // Over TLS the port accepting is enough: client commands wait for /ready.
                if TcpStream::connect(address).is_ok() {
                    return Ok(());
                }
                assert!(Instant::now() < deadline, "baton did not listen in time");
                thread::sleep(Duration::from_millis(20));
                continue;
            }
            let response = TcpStream::connect(&address).ok().and_then(|mut stream| {
                let request =
                    format!("GET /ready HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
                stream.write_all(request.as_bytes()).ok()?;
                let mut response = String::new();
                stream.read_to_string(&mut response).ok()?;
                Some(response)
            });
            if let Some(response) = response {
                if response.starts_with("HTTP/1.1 200") {
                    return Ok(());
                }
                if response.starts_with("HTTP/1.1 503") {
                    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
                    if let Ok(body) = serde_json::from_str::<Value>(body) {
                        assert_eq!(body["ready"], Value::Bool(false), "503 /ready: {body}");
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "baton did not become ready in time"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        wait_with_timeout(&mut self.child, SHUTDOWN_TIMEOUT)
            .expect("server did not stop after SIGTERM")
    }
}

impl Server {
    /// Runs `baton --url <this server> <args>`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
    }

    /// `run` with the arguments of one line split at whitespace, for arguments without
    /// spaces: `server.cli("stream read clicks --from-offset 0")`.
    pub fn cli(&self, line: &str) -> Output {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.run(&args)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        let mut all = vec!["--url", self.url.as_str()];
        all.extend_from_slice(args);
        baton(&all, stdin)
    }

    /// The text of `GET <path>` (e.g. `/metrics`), which must succeed.
    pub fn get_text(&self, path: &str) -> String {
        let url = format!("{}{path}", self.url);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = reqwest::get(&url).await.unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            response.text().await.unwrap()
        })
    }

    /// A plain HTTP call to this server, for what the test sets up without the CLI.
    pub fn http(&self, method: &str, path: &str, body: Value) -> Value {
        http(method, &format!("{}{path}", self.url), body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.owns_data_dir {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {}", self.stdout))
    }

    /// Each stdout line as JSON (followers print one object per line).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("line is not JSON ({error}): {line}"))
            })
            .collect()
    }

    /// A failure with `code` whose stderr contains `needle`.
    #[track_caller]
    pub fn assert_error(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(
            self.status.code(),
            Some(code),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "{needle:?} not in stderr: {}",
            self.stderr
        );
        self
    }

    /// A refusal by the CLI itself (a usage error, exit 2) naming `needle`: nothing was asked
    /// of the server, so nothing is printed on stdout.
    #[track_caller]
    pub fn assert_refused(&self, needle: &str) {
        self.assert_error(2, needle);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "exit {:?}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `baton <args>` with `stdin` as its input, killed if it outlives `COMMAND_TIMEOUT`.
pub fn baton(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BATON)
        .args(args)
        .env_remove("BATON_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read and write on threads, so a full pipe can never block the wait below.
    let mut child_stdin = child.stdin.take().unwrap();
    let input = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = child_stdin.write_all(input.as_bytes());
    });
    let stdout = read_on_thread(child.stdout.take().unwrap());
    let stderr = read_on_thread(child.stderr.take().unwrap());
    let status = match wait_with_timeout(&mut child, COMMAND_TIMEOUT) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`baton {}` did not finish within {COMMAND_TIMEOUT:?}",
                args.join(" ")
            );
        }
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

pub fn read_on_thread(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn temp_dir(label: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("baton-cli-{label}-{}-{nanos}", std::process::id()))
}

/// A plain HTTP call from the test itself (for what has no CLI command).
pub fn http(method: &str, url: &str, body: Value) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = client
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{url}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    })
}

/// One request an [`Endpoint`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A local HTTP endpoint for push and callback deliveries: records every request and answers
/// each with the status last set (200 at first), then closes the connection.
pub struct Endpoint {
    pub url: String,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Endpoint {
    pub fn start() -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(200));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (thread_status, thread_received) = (status.clone(), received.clone());
        // The thread ends with the test binary; a listener needs no clean stop here.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let status = thread_status.load(Ordering::SeqCst);
                if let Some(request) = answer(stream, status) {
                    thread_received.lock().unwrap().push(request);
                }
            }
        });
        Endpoint {
            url,
            status,
            received,
        }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until at least `count` requests arrived; all of them.
    pub fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{count} requests did not arrive in time: {received:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads one request (head and `content-length` body) and answers `status` without a body.
fn answer(mut stream: TcpStream, status: u16) -> Option<Received> {
    stream.set_read_timeout(Some(COMMAND_TIMEOUT)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let path = request_line.split_whitespace().nth(1)?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let response =
        format!("HTTP/1.1 {status} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(response.as_bytes()).ok()?;
    Some(Received {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The rows (without the header) of the table that starts `stdout`, split into cells; its
/// header's first columns are `columns`.
pub fn table_rows(stdout: &str, columns: &str) -> Vec<Vec<String>> {
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let columns: Vec<&str> = columns.split_whitespace().collect();
    assert!(header.starts_with(&columns), "{stdout}");
    lines
        .take_while(|line| !line.is_empty())
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Polls `check` until it gives a value, failing the test after `COMMAND_TIMEOUT`.
#[track_caller]
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Held by the tests that load the machine for long and wait on real time (the crash cycles,
/// the real full disk): they run one at a time, not alongside each other, as they did when
/// each had a test binary of its own. An async lock, as they hold it across awaits; it does
/// not poison, so one failure does not fail the rest.
pub async fn run_alone() -> tokio::sync::MutexGuard<'static, ()> {
    static ALONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ALONE.lock().await
}
