//! Sink throughput into PostgreSQL, next to a plain `COPY` of the same rows (docs/benchmarks.md).
//!
//! Fills a stream of an in-memory server with N records of about 1 KiB of JSON, defines a
//! sink (batch 1,000) and times it from the `PUT` until every row is committed; then writes
//! the same rows with `COPY ... FROM STDIN`, once in one statement and once in 1,000-row
//! transactions. Works in a schema of its own, dropped at the end.
//!
//! `cargo run --release -p baton-server --example sink_bench -- [N] [postgres URL]`

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_engine::{Engine, EngineConfig, LocalEngine, NewRecord, SystemClock};
use baton_server::ServerConfig;
use futures::SinkExt;
use serde_json::{json, Value};

const BATCH: usize = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(100_000, |a| a.parse().unwrap());
    let url = args
        .next()
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let (pg, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let schema = format!("sink_bench_{}", std::process::id());
    pg.batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();

    let config = ServerConfig {
        listen: "127.0.0.1:0".into(),
        ..ServerConfig::default()
    };
    let engine: Arc<dyn Engine> = Arc::new(LocalEngine::in_memory(
        Arc::new(SystemClock),
        EngineConfig {
            limits: config.queue_limits(),
            max_waiting_receives: config.max_waiting_receives,
        },
    ));
    let stream = baton_core::StreamName::new("bench").unwrap();
    let stream_config = baton_core::StreamConfig {
        partitions: 1,
        retention_ms: None,
        retention_bytes: None,
        max_records: None,
    };
    engine
        .create_stream(stream.clone(), stream_config)
        .await
        .unwrap();
    let pad = "x".repeat(960);
    let bodies: Vec<String> = (0..n)
        .map(|i| json!({"n": i, "type": "login", "pad": pad}).to_string())
        .collect();
    for chunk in bodies.chunks(BATCH) {
        let records = chunk
            .iter()
            .map(|body| NewRecord {
                key: Some("user-7".into()),
                value: body.clone(),
                headers: vec![("source".into(), "bench".into())],
                partition: None,
            })
            .collect();
        engine.append(&stream, None, records).await.unwrap();
    }
    let body_bytes: usize = bodies.iter().map(String::len).sum::<usize>() / n;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(baton_server::serve(
        config,
        engine,
        listener,
        None,
        async move {
            let _ = stopped.await;
        },
    ));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let definition = json!({"source": {"stream": "bench"},
        "postgres": {"url": url, "table": format!("{schema}.sink_rows")}, "batch_max": BATCH, "flush_ms": 200});
    let started = Instant::now();
    let put = http
        .put(format!("{base}/v1/sinks/bench"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    loop {
        let sink: Value = http
            .get(format!("{base}/v1/sinks/bench"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if sink["stats"]["rows_written_total"].as_u64() == Some(n as u64) {
            break;
        }
        assert!(sink["stats"]["last_error"].is_null(), "{sink}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sink_time = started.elapsed();
    let _ = stop.send(());
    let _ = server.await;

    // The same rows, the same columns, as COPY text.
    let columns =
        "id, source, \"partition\", \"offset\", key, headers, value, value_text, \"timestamp\"";
    pg.batch_execute(&format!(
        "CREATE TABLE {schema}.copy_rows (LIKE {schema}.sink_rows INCLUDING ALL)"
    ))
    .await
    .unwrap();
    let lines: Vec<String> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            format!(
                "0-{i}\tbench\t0\t{i}\tuser-7\t{{\"source\": \"bench\"}}\t{}\t\\N\t2026-01-01T00:00:00.000Z\n",
                body.replace('\\', "\\\\")
            )
        })
        .collect();
    let copy = |table: &'static str, lines: &[String]| {
        let data: String = lines.concat();
        let sql = format!("COPY {schema}.{table} ({columns}) FROM STDIN");
        let pg = &pg;
        async move {
            let sink = pg.copy_in::<_, bytes::Bytes>(&sql).await.unwrap();
            futures::pin_mut!(sink);
            sink.send(bytes::Bytes::from(data)).await.unwrap();
            sink.finish().await.unwrap()
        }
    };
    let started = Instant::now();
    assert_eq!(copy("copy_rows", &lines).await, n as u64);
    let copy_time = started.elapsed();
    pg.batch_execute(&format!("TRUNCATE {schema}.copy_rows"))
        .await
        .unwrap();
    let started = Instant::now();
    for chunk in lines.chunks(BATCH) {
        assert_eq!(copy("copy_rows", chunk).await, chunk.len() as u64);
    }
    let copy_batched_time = started.elapsed();
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();

    let rate = |t: Duration| n as f64 / t.as_secs_f64();
    println!("rows: {n}, body: {body_bytes} bytes of JSON, batch: {BATCH}");
    println!(
        "sink (stream → table, positions in the same transaction): {:.2} s, {:.0} rows/s",
        sink_time.as_secs_f64(),
        rate(sink_time)
    );
    println!(
        "COPY, one statement:                                     {:.2} s, {:.0} rows/s",
        copy_time.as_secs_f64(),
        rate(copy_time)
    );
    println!(
        "COPY, one statement per {BATCH} rows:                     {:.2} s, {:.0} rows/s",
        copy_batched_time.as_secs_f64(),
        rate(copy_batched_time)
    );
}
