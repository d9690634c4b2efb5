//! One sink's task: connect, read a batch, write it with its positions in one transaction,
//! ack, again; on any failure (PostgreSQL down or refusing, the source gone) the sink goes to
//! `retrying`, waits a capped exponential backoff, and starts a new session by itself. Baton
//! keeps accepting messages meanwhile: the source holds them.
//!
//! Runs until its cancellation token fires (pause, delete, replace, shutdown). Dropping a
//! session mid-transaction closes its connection, which rolls the transaction back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_engine::Engine;
use tokio_util::sync::CancellationToken;

use crate::sinks::postgres::Db;
use crate::sinks::rows;
use crate::sinks::source::{Batch, Reader, SinkError};
use crate::sinks::spec::SinkSpec;

/// Longest a connection, its setup or one batch's transaction may take.
const PG_TIMEOUT: Duration = Duration::from_secs(30);

/// A sink's state as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Running,
    Paused,
    Retrying,
}

impl State {
    pub const ALL: [State; 3] = [State::Running, State::Paused, State::Retrying];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Paused => "paused",
            State::Retrying => "retrying",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
    pub retry_in_ms: Option<u64>,
}

/// What a sink's task reports, read by the API and `/metrics`.
#[derive(Debug)]
pub struct Progress {
    pub status: parking_lot::Mutex<Status>,
    pub rows_written: AtomicU64,
    pub duplicates_skipped: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
    pub expired_skipped: AtomicU64,
    /// A stream source's committed next offset per partition (`None`: nothing stored yet),
    /// for the lag.
    pub positions: parking_lot::Mutex<Vec<Option<u64>>>,
}

impl Progress {
    pub fn new(state: State) -> Self {
        Progress {
            status: parking_lot::Mutex::new(Status {
                state,
                last_error: None,
                last_error_at: None,
                retry_in_ms: None,
            }),
            rows_written: AtomicU64::new(0),
            duplicates_skipped: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            expired_skipped: AtomicU64::new(0),
            positions: parking_lot::Mutex::new(Vec::new()),
        }
    }

    fn set_positions(&self, positions: Option<&[Option<u64>]>) {
        if let Some(positions) = positions {
            *self.positions.lock() = positions.to_vec();
        }
    }

    fn set_state(&self, state: State) {
        let mut status = self.status.lock();
        status.state = state;
        if state == State::Running {
            status.last_error = None;
            status.last_error_at = None;
            status.retry_in_ms = None;
        }
    }

    fn failed(&self, error: &SinkError, retry_in: Duration) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut status = self.status.lock();
        status.state = State::Retrying;
        status.last_error = Some(error.to_string());
        status.last_error_at = Some(now_ms());
        status.retry_in_ms = Some(retry_in.as_millis() as u64);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The delay before attempt `failures + 1`: `base × 2^(failures − 1)`, at most `max`.
pub fn backoff(base_ms: u64, max_ms: u64, failures: u32) -> Duration {
    let factor = 1u64 << failures.saturating_sub(1).min(32);
    Duration::from_millis(base_ms.saturating_mul(factor).min(max_ms))
}

/// Everything a sink's task needs.
pub struct Worker {
    pub engine: Arc<dyn Engine>,
    pub spec: Arc<SinkSpec>,
    pub progress: Arc<Progress>,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub cancel: CancellationToken,
}

impl Worker {
    /// Runs sessions until cancelled, backing off after each failure.
    pub async fn run(self) {
        let mut reader = Reader::new(&self.spec);
        let mut pending = Batch::default();
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                _ = self.cancel.cancelled() => break,
                result = self.session(&mut reader, &mut pending, &mut failures) => result,
            };
            let Err(error) = result;
            failures = failures.saturating_add(1);
            let delay = backoff(self.retry_base_ms, self.retry_max_ms, failures);
            tracing::warn!(sink = %self.spec.name, %error, retry_in_ms = delay.as_millis() as u64, "sink failed; retrying");
            self.progress.failed(&error, delay);
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
        }
        reader.release(self.engine.as_ref(), pending).await;
    }

    /// One connection's life; returns only by failing.
    async fn session(
        &self,
        reader: &mut Reader,
        pending: &mut Batch,
        failures: &mut u32,
    ) -> Result<std::convert::Infallible, SinkError> {
        let engine = self.engine.as_ref();
        let spec = &self.spec;
        let mut db = within(Db::open(spec)).await?;
        within(reader.start(engine, spec, &db, pending)).await?;
        self.progress.set_state(State::Running);
        *failures = 0;
        self.progress.set_positions(reader.positions());
        loop {
            if !pending.sealed {
                reader.collect(engine, spec, pending).await?;
            }
            let json = rows::encode(&pending.rows, &spec.columns);
            let inserted =
                within(db.write(&json, reader.positions_stream(), &pending.moves)).await?;
            reader.committed(pending);
            let batch = std::mem::take(pending);
            let n = batch.rows.len() as u64;
            reader.ack(engine, batch).await;
            let p = &self.progress;
            p.rows_written.fetch_add(inserted, Ordering::Relaxed);
            p.duplicates_skipped
                .fetch_add(n.saturating_sub(inserted), Ordering::Relaxed);
            p.batches.fetch_add(1, Ordering::Relaxed);
            p.expired_skipped.store(reader.expired(), Ordering::Relaxed);
            p.set_positions(reader.positions());
        }
    }
}

/// For a sink that starts paused: reads its stored positions once, so its lag counts from
/// them rather than from the stream's start. Best effort; gives up on the first failure.
pub async fn load_positions(engine: Arc<dyn Engine>, spec: Arc<SinkSpec>, progress: Arc<Progress>) {
    let mut reader = Reader::new(&spec);
    let mut pending = Batch::default();
    let loaded = async {
        let db = within(Db::open(&spec)).await?;
        within(reader.start(engine.as_ref(), &spec, &db, &mut pending)).await
    };
    if loaded.await.is_ok() {
        progress.set_positions(reader.positions());
    }
}

async fn within<T, E>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SinkError>
where
    SinkError: From<E>,
{
    match tokio::time::timeout(PG_TIMEOUT, future).await {
        Ok(result) => result.map_err(SinkError::from),
        Err(_) => Err(SinkError::Timeout(PG_TIMEOUT.as_millis() as u64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let ms = |f| backoff(200, 30_000, f).as_millis();
        assert_eq!(ms(1), 200);
        assert_eq!(ms(2), 400);
        assert_eq!(ms(3), 800);
        assert_eq!(ms(8), 25_600);
        assert_eq!(ms(9), 30_000);
        assert_eq!(ms(1000), 30_000);
    }
}
