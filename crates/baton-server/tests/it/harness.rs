//! A server on `127.0.0.1:0` and a small JSON client that returns `(status, body)`.

use std::sync::Arc;
use std::time::Duration;

use baton_engine::{Engine, EngineConfig, LocalEngine, SystemClock};
use baton_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestServer {
    pub base: String,
    /// The dedicated wire port (the HTTP port serves the wire protocol too, at `/v1/wire`).
    pub wire: std::net::SocketAddr,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// How a [`TestServer`] is built: [`TestServer::options`], then any of these, then `start`.
/// By default: the memory engine, the default configuration with a 20 ms tick, and a
/// dedicated wire port besides the HTTP one.
pub struct ServerOptions<'a> {
    /// A durable engine on this simulated disk (the test can fail and repair it) instead of
    /// the memory engine.
    durable_on: Option<&'a baton_storage::SimFs>,
    /// An engine the test made (e.g. a wrapper that observes the calls) instead of either.
    engine: Option<Arc<dyn Engine>>,
    adjust: Box<dyn FnOnce(&mut ServerConfig) + 'a>,
    dedicated_wire: bool,
}

impl<'a> ServerOptions<'a> {
    /// A durable engine on `fs`, its storage at `/data`.
    pub fn durable(mut self, fs: &'a baton_storage::SimFs) -> Self {
        self.durable_on = Some(fs);
        self
    }

    /// Serves over `engine` (e.g. a wrapper that observes it) instead of building one; the
    /// configuration's engine settings then do not apply to it.
    pub fn engine(mut self, engine: Arc<dyn Engine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Adjusts the configuration (storage settings included) before the server starts.
    pub fn config(mut self, adjust: impl FnOnce(&mut ServerConfig) + 'a) -> Self {
        self.adjust = Box::new(adjust);
        self
    }

    /// As `baton serve` starts by default: the wire protocol only on the HTTP port (`wire` is
    /// then an address nothing listens on).
    pub fn without_wire_port(mut self) -> Self {
        self.dedicated_wire = false;
        self
    }

    pub async fn start(self) -> TestServer {
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".to_string(),
            tick_interval_ms: 20,
            ..ServerConfig::default()
        };
        if self.durable_on.is_some() {
            config.data_dir = "/data".into();
        }
        (self.adjust)(&mut config);
        // The engine's limits and storage settings come from the adjusted configuration, as in
        // `baton serve`.
        let engine_config = EngineConfig {
            limits: config.queue_limits(),
            max_waiting_receives: config.max_waiting_receives,
        };
        let engine: Arc<dyn Engine> = match (self.engine, self.durable_on) {
            (Some(engine), _) => engine,
            (None, Some(fs)) => Arc::new(
                LocalEngine::durable(
                    Arc::new(SystemClock),
                    engine_config,
                    Arc::new(fs.clone()),
                    config.storage().unwrap(),
                    false,
                )
                .unwrap()
                .with_lock_settings(config.lock_settings())
                .with_schedule_limits(config.schedule_limits()),
            ),
            (None, None) => Arc::new(
                LocalEngine::in_memory(Arc::new(SystemClock), engine_config)
                    .with_lock_settings(config.lock_settings())
                    .with_schedule_limits(config.schedule_limits()),
            ),
        };
        TestServer::start_serving(config, engine, self.dedicated_wire).await
    }
}

impl TestServer {
    /// A server with the default options.
    pub async fn start() -> Self {
        Self::options().start().await
    }

    /// The options to build a server with; see [`ServerOptions`].
    pub fn options<'a>() -> ServerOptions<'a> {
        ServerOptions {
            durable_on: None,
            engine: None,
            adjust: Box::new(|_| {}),
            dedicated_wire: true,
        }
    }

    /// Serves on free ports; `dedicated_wire`: with a dedicated wire port as well.
    async fn start_serving(
        config: ServerConfig,
        engine: Arc<dyn Engine>,
        dedicated_wire: bool,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let wire_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wire = wire_listener.local_addr().unwrap();
        let wire_listener = dedicated_wire.then_some(wire_listener);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            baton_server::serve(config, engine, listener, wire_listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestServer {
            base,
            wire,
            http,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Triggers graceful shutdown and waits for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .unwrap()
                .unwrap();
        }
    }

    /// Power loss under the server (`kill -9` of a durable engine on `fs`): everything not
    /// synced is lost and nothing written afterwards reaches the disk; then the server's tasks
    /// are stopped and the disk powered on again for a restart.
    pub async fn crash(mut self, fs: &baton_storage::SimFs) {
        fs.power_off(baton_storage::CrashMode::LoseUnsynced);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Writes fail from here on, so the shutdown may end in an error.
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        fs.fail_writes(None);
    }

    pub fn shutdown_trigger(&mut self) -> oneshot::Sender<()> {
        self.stop.take().unwrap()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn raw(&self, method: Method, path: &str, body: &'static str) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    /// `GET /metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn create_queue(&self, name: &str, attributes: Value) {
        let (status, body) = self.put(&format!("/v1/queues/{name}"), attributes).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// Sends plain bodies; returns their ids.
    pub async fn send_bodies(&self, queue: &str, bodies: &[&str]) -> Vec<String> {
        let messages: Vec<Value> = bodies.iter().map(|b| json!({"body": b})).collect();
        self.send(queue, messages).await
    }

    pub async fn send(&self, queue: &str, messages: Vec<Value>) -> Vec<String> {
        let (status, body) = self
            .post(
                &format!("/v1/queues/{queue}/messages"),
                json!({"messages": messages}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub async fn receive(&self, queue: &str, request: Value) -> Vec<Value> {
        let (status, body) = self
            .post(&format!("/v1/queues/{queue}/receive"), request)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["messages"].as_array().unwrap().clone()
    }

    pub async fn ack(&self, queue: &str, receipts: &[&str]) -> Vec<Value> {
        let (status, body) = self
            .post(
                &format!("/v1/queues/{queue}/ack"),
                json!({"receipts": receipts}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["results"].as_array().unwrap().clone()
    }

    pub async fn stats(&self, queue: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/queues/{queue}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["stats"].clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}
