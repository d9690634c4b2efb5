//! The header read and idle timeouts of an HTTP/1.1 connection, at a few instructions per
//! request: counters the connection bumps (reads and writes with data, in [`Watched`];
//! requests started and answered, in [`Http1Service`]) and a watchdog that samples them every
//! quarter of the shorter timeout ([`watchdog`]).
//!
//! hyper's own `header_read_timeout` does the same job with a timer per request head (an
//! allocation, a timer-wheel insert and remove, a clock read: about 600 instructions of a
//! 55,000-instruction send), and it also runs while a kept-alive connection waits for its next
//! request, so it cannot tell a slow head from an idle connection. Sampled, a timeout is never cut
//! short and runs over by at most half of the shorter one (two ticks).
//!
//! What the samples mean: a request in flight (started, its response future not done) holds
//! off both timeouts, however long it takes (a long poll). Not in flight, bytes that came
//! without a request starting are a request head in progress (header timeout); no bytes and
//! no writes are idleness (idle timeout; a streaming response's writes count as activity).

use axum::extract::ConnectInfo;

use crate::http_listener::ClientAddr;
use crate::state::AppState;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::util::Oneshot;
use tower::ServiceExt;

/// The counters of one connection. Each is written by one side only (the connection's task),
/// so a relaxed load and store is enough; the watchdog, on the same task, reads them.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    reads: AtomicU64,
    writes: AtomicU64,
    started: AtomicU64,
    answered: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    reads: u64,
    writes: u64,
    started: u64,
    answered: u64,
}

impl Watch {
    fn sample(&self) -> Sample {
        Sample {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
        }
    }
}

/// Why the watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// Bytes came but no whole request head within `header_read_timeout`: closed at once.
    Header,
    /// Nothing for `idle_timeout`: shut down gracefully.
    Idle,
}

/// Completes when the connection watched by `watch` passed one of its timeouts.
pub(crate) async fn watchdog(watch: &Watch, header: Duration, idle: Duration) -> Expired {
    let tick = header.min(idle) / 4;
    let mut last = watch.sample();
    // How long the connection has been in the state, counted from the first look that saw
    // it (so a timeout is never cut short; it may run up to a tick over).
    let (mut head_for, mut idle_for): (Option<Duration>, Option<Duration>) = (None, None);
    let advance = |state: Option<Duration>| Some(state.map_or(Duration::ZERO, |d| d + tick));
    loop {
        tokio::time::sleep(tick).await;
        let now = watch.sample();
        let in_flight = now.started != now.answered;
        if in_flight || now.started != last.started {
            // A request is being served, or one came and went since the last look.
            head_for = None;
            idle_for = None;
        } else if now.reads != last.reads || head_for.is_some() {
            // Bytes without a request: a head in progress (or garbage), however slowly.
            head_for = advance(head_for);
            idle_for = None;
            if head_for >= Some(header) {
                return Expired::Header;
            }
        } else if now.writes != last.writes {
            idle_for = None;
        } else {
            idle_for = advance(idle_for);
            if idle_for >= Some(idle) {
                return Expired::Idle;
            }
        }
        last = now;
    }
}

/// A stream whose reads and writes with data are counted.
pub(crate) struct Watched<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, watch: Arc<Watch>) -> Self {
        Watched { inner, watch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            bump(&this.watch.reads);
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            bump(&this.watch.writes);
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            bump(&this.watch.writes);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The router as hyper's service for an HTTP/1.1 connection, counting requests started and
/// answered (what `TowerToHyperService` does, plus two counters).
#[derive(Clone)]
pub(crate) struct Http1Service {
    app: Router,
    /// For the hot route (`api::hot`), which answers without `app`.
    state: AppState,
    watch: Arc<Watch>,
    client: ConnectInfo<ClientAddr>,
}

impl Http1Service {
    pub(crate) fn new(app: Router, state: AppState, watch: Arc<Watch>, client: ClientAddr) -> Self {
        Http1Service {
            app,
            state,
            watch,
            client: ConnectInfo(client),
        }
    }
}

impl hyper::service::Service<hyper::Request<Incoming>> for Http1Service {
    type Response = Response;
    type Error = Infallible;
    type Future = Answered;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Answered {
        bump(&self.watch.started);
        let future = match crate::api::hot::hot_call(&self.state, &request) {
            Some(call) => Answer::Hot(Box::pin(crate::api::hot::answer(
                self.state.clone(),
                call,
                request,
                self.client.0,
            ))),
            None => {
                request.extensions_mut().insert(self.client);
                Answer::Router(self.app.clone().oneshot(request.map(Body::new)))
            }
        };
        Answered {
            future,
            watch: self.watch.clone(),
        }
    }
}

/// How a request is answered: by the router, or by the hot route (`api::hot`).
// Unboxed on purpose: boxing the router's `Oneshot` (it holds the request until polled)
// would add an allocation to every other request; the hot route's future is boxed anyway.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Router(Oneshot<Router, axum::extract::Request>),
    Hot(Pin<Box<dyn Future<Output = Response> + Send>>),
}

/// A request's response future, counted as answered when it is ready (or dropped).
pub(crate) struct Answered {
    future: Answer,
    watch: Arc<Watch>,
}

impl Future for Answered {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().future {
            // `Oneshot` is Unpin (it boxes nothing it needs pinned: Router's future is boxed).
            Answer::Router(future) => Pin::new(future).poll(cx),
            Answer::Hot(future) => future.as_mut().poll(cx).map(Ok),
        }
    }
}

impl Drop for Answered {
    fn drop(&mut self) {
        bump(&self.watch.answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_head_in_progress_expires_after_the_header_timeout_and_idleness_after_the_idle_one() {
        let (header, idle) = (Duration::from_secs(10), Duration::from_secs(60));
        let watch = Arc::new(Watch::default());
        let started = tokio::time::Instant::now();
        // Idle from the start: the idle timeout.
        assert_eq!(watchdog(&watch, header, idle).await, Expired::Idle);
        let waited = started.elapsed();
        assert!(idle <= waited && waited <= idle + header / 2, "{waited:?}");

        // A byte, then nothing: the header timeout.
        let watching = tokio::spawn({
            let watch = watch.clone();
            async move { watchdog(&watch, header, idle).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        bump(&watch.reads);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!watching.is_finished(), "not before the header timeout");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(watching.is_finished());
        assert_eq!(watching.await.expect("watchdog"), Expired::Header);

        // A request in flight for long holds off both.
        let watching = tokio::spawn({
            let watch = watch.clone();
            async move { watchdog(&watch, header, idle).await }
        });
        bump(&watch.reads);
        bump(&watch.started);
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!watching.is_finished());
        bump(&watch.answered);
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(!watching.is_finished());
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(watching.await.expect("watchdog"), Expired::Idle);
    }
}
