//! A real HTTP receiver for push deliveries and callbacks: an axum server on an ephemeral
//! port that records every request and answers as the test says (fail the first N, fail
//! until switched, answer slowly), counting how many requests it holds at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use parking_lot::Mutex;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
    /// How many requests the receiver held when this one arrived (itself included).
    pub concurrent: u64,
    pub answered: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
pub struct Behaviour {
    /// Answer 500 to this many requests first.
    pub fail_first: AtomicU64,
    /// Answer 500 while set.
    pub failing: AtomicBool,
    /// Wait this long before answering.
    pub delay_ms: AtomicU64,
    requests: Mutex<Vec<Received>>,
    n_seen: AtomicU64,
    in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Per FIFO group (`baton-group-id`), requests held at once; the most seen.
    group_in_flight: Mutex<HashMap<String, u64>>,
    pub max_group_in_flight: AtomicU64,
}

pub struct Receiver {
    pub url: String,
    pub behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(behaviour): State<Arc<Behaviour>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let concurrent = behaviour.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    behaviour
        .max_in_flight
        .fetch_max(concurrent, Ordering::SeqCst);
    let group = headers
        .get("baton-group-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(group) = &group {
        let mut groups = behaviour.group_in_flight.lock();
        let n = groups.entry(group.clone()).or_default();
        *n += 1;
        behaviour
            .max_group_in_flight
            .fetch_max(*n, Ordering::SeqCst);
    }
    let index = behaviour.n_seen.fetch_add(1, Ordering::SeqCst);
    let fail = index < behaviour.fail_first.load(Ordering::SeqCst)
        || behaviour.failing.load(Ordering::SeqCst);
    let answered = if fail { 500 } else { 200 };
    let received = Received {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: String::from_utf8_lossy(&body).to_string(),
        at: Instant::now(),
        concurrent,
        answered,
    };
    let delay = behaviour.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // Recorded when answered, so the order of `requests` is the order of completions.
    behaviour.requests.lock().push(received);
    if let Some(group) = &group {
        if let Some(n) = behaviour.group_in_flight.lock().get_mut(group) {
            *n -= 1;
        }
    }
    behaviour.in_flight.fetch_sub(1, Ordering::SeqCst);
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        let behaviour = Arc::new(Behaviour::default());
        let app = Router::new().fallback(handle).with_state(behaviour.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            behaviour,
            task,
        }
    }

    /// A URL on which nothing listens.
    pub async fn closed_url() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        url
    }

    pub fn requests(&self) -> Vec<Received> {
        self.behaviour.requests.lock().clone()
    }

    pub fn count(&self) -> usize {
        self.behaviour.requests.lock().len()
    }

    /// Waits (at most 10 s) until `n` requests were answered; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} requests, got {}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Polls `check` every 10 ms until it returns `Some` (at most 10 s).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
