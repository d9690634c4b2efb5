//! The HTTP surface. Only this module knows HTTP: handlers parse requests, call the service
//! layer (`crate::service`) or, for what only HTTP has (live streams, the dashboard, metrics),
//! the engine, and render `baton-proto` bodies.

mod browse;
mod dashboard;
pub mod error;
mod events;
pub(crate) mod hot;
pub mod json;
mod keys;
pub mod live;
mod live_stats;
mod locks;
pub(crate) mod metrics;
mod push;
pub(crate) mod queues;
pub(crate) mod requests;
mod schedules;
mod sinks;
pub mod sqs;
mod stream_live;
mod stream_metrics;
mod streams;
mod system;
mod topics;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use crate::state::AppState;
use error::ApiError;

/// The whole HTTP application.
///
/// The layers every request passes (tracing, the body limits) wrap the router once, as one
/// service, rather than through `Router::layer`, which wraps every route's handler in a boxed
/// service of its own: each boxed level is cloned — an allocation, recursively through the
/// levels below it — on every request. Only the layers that need the matched route template
/// (metrics, permissions) are route layers.
pub fn router(state: AppState) -> Router {
    let body_limit = usize::try_from(state.config.max_request_bytes).unwrap_or(usize::MAX);
    let routes = Router::new()
        .route("/health", get(system::health))
        .route("/ready", get(system::ready))
        .route("/v1/server", get(system::server_info))
        .route(baton_proto::wire::UPGRADE_PATH, get(crate::wire::upgrade))
        .route("/metrics", get(metrics::metrics))
        .merge(queue_routes())
        .merge(stream_routes())
        .merge(push_and_event_routes())
        .merge(topic_routes())
        .route("/v1/queues/{queue}/request", post(requests::request))
        .route("/v1/replies/{correlation_id}", post(requests::reply))
        // The dashboard (`GET /` is in `sqs::handle_get`), its live stream and browser.
        .route("/ui/{*path}", get(dashboard::asset))
        .route("/v1/live/stats", get(live_stats::stats))
        .route("/v1/dashboard/push/{queue}", get(dashboard::push))
        .route("/v1/queues/{queue}/messages", get(browse::peek))
        .merge(locks::routes())
        .merge(sinks::routes())
        .merge(schedules::routes())
        .merge(keys::routes())
        .route("/", post(sqs::handle).get(sqs::handle_get))
        .route("/000000000000/{queue}", post(sqs::handle).get(sqs::handle))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside the metrics layer, so refused requests are counted too.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::middleware::authorize,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state.clone());
    let app = tower::ServiceBuilder::new()
        // 5xx answers are logged where they arise (`ApiError`); a 503 from `/ready` during
        // recovery is an answer, not a failure.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(middleware::from_fn_with_state(state, limit_body))
        .layer(DefaultBodyLimit::max(body_limit))
        .service(routes);
    Router::new().fallback_service(app)
}

/// The native queue API (`queues.rs`).
fn queue_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/queues", get(queues::list))
        .route(
            "/v1/queues/{queue}",
            put(queues::create)
                .get(queues::show)
                .patch(queues::update)
                .delete(queues::delete),
        )
        .route("/v1/queues/{queue}/purge", post(queues::purge))
        .route("/v1/queues/{queue}/messages", post(queues::send))
        .route(
            "/v1/queues/{queue}/messages/{id}",
            get(queues::message_status),
        )
        .route("/v1/queues/{queue}/receive", post(queues::receive))
        .route("/v1/queues/{queue}/ack", post(queues::ack))
        .route("/v1/queues/{queue}/nack", post(queues::nack))
        .route("/v1/queues/{queue}/visibility", post(queues::visibility))
        .route("/v1/queues/{queue}/redrive", post(queues::redrive))
}

/// Streams, their consumer groups and live subscriptions (`streams.rs`, `stream_live.rs`).
fn stream_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/streams", get(streams::list))
        .route(
            "/v1/streams/{stream}",
            put(streams::create)
                .get(streams::show)
                .delete(streams::delete),
        )
        .route(
            "/v1/streams/{stream}/records",
            post(streams::append).get(streams::read),
        )
        .route(
            "/v1/streams/{stream}/groups/{group}",
            put(streams::create_group)
                .get(streams::show_group)
                .delete(streams::delete_group),
        )
        .route(
            "/v1/streams/{stream}/groups/{group}/read",
            post(streams::group_read),
        )
        .route(
            "/v1/streams/{stream}/groups/{group}/ack",
            post(streams::group_ack),
        )
        .route(
            "/v1/streams/{stream}/groups/{group}/pending",
            get(streams::group_pending),
        )
        .route(
            "/v1/streams/{stream}/groups/{group}/claim",
            post(streams::group_claim),
        )
        .route(
            "/v1/streams/{stream}/groups/{group}/seek",
            post(streams::group_seek),
        )
        // Live stream subscriptions (`stream_live.rs`).
        .route("/v1/streams/{stream}/live", get(stream_live::sse))
        .route("/v1/streams/{stream}/ws", get(stream_live::ws))
        .route(
            "/v1/streams/{stream}/groups/{group}/ws",
            get(stream_live::group_ws),
        )
}

/// Push subscriptions and callbacks (`push.rs`), and the event API (`events.rs`).
fn push_and_event_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/queues/{queue}/push",
            put(push::put).get(push::get).delete(push::delete),
        )
        .route("/v1/callbacks/failed", get(push::failed))
        .route(
            "/v1/queues/{queue}/messages/{id}/retry-callback",
            post(push::retry),
        )
        .route("/api/events", post(events::create))
        .route("/api/events/server-info", get(events::server_info))
        .route("/api/events/queue-info", get(events::queue_info))
        .route("/api/events/advanced", post(events::create_advanced))
        .route(
            "/api/events/performance-test",
            post(events::performance_test),
        )
        .route(
            "/api/events/retry-callback/{event_id}",
            post(events::retry_callback),
        )
        .route("/api/events/{event_id}", get(events::status))
}

/// Topics and their subscriptions and live streams (`topics.rs`, `live.rs`).
fn topic_routes() -> Router<AppState> {
    Router::new()
        .route("/v1/topics", get(topics::list))
        .route(
            "/v1/topics/{topic}",
            put(topics::create).get(topics::show).delete(topics::delete),
        )
        .route(
            "/v1/topics/{topic}/subscriptions/{subscription}",
            put(topics::put_subscription)
                .get(topics::show_subscription)
                .delete(topics::delete_subscription),
        )
        .route("/v1/topics/{topic}/publish", post(topics::publish))
        .route("/v1/topics/{topic}/live", get(live::sse))
        .route("/v1/topics/{topic}/ws", get(live::ws))
}

/// Refuses a request whose declared length is over the limit before reading any of it.
async fn limit_body(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.config.max_request_bytes) {
        return ApiError::RequestTooLarge {
            limit_bytes: state.config.max_request_bytes,
        }
        .into_response();
    }
    next.run(request).await
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
    }
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
    }
}
