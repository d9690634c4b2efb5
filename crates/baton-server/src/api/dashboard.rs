//! The web dashboard: hand-written HTML, CSS and JavaScript modules from the repository's
//! `dashboard/` folder, embedded in the binary at build time (no CDN, nothing fetched at run
//! time). `GET /` without an SQS `Action` answers `index.html`; everything else is under
//! `/ui/`. The pages read the native API and the live stream (`/v1/live/stats`).

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use baton_proto as proto;
use rust_embed::RustEmbed;
use serde::Serialize;

use crate::api::error::ApiError;
use crate::api::AppState;
use crate::service::ServiceError;

#[derive(RustEmbed)]
// Relative to this crate's manifest: the repository's `dashboard/` folder.
#[folder = "../../dashboard/"]
struct Assets;

/// The assets change with the binary, so browsers revalidate rather than cache for long.
const CACHE_CONTROL: &str = "no-cache";

fn serve(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = file.metadata.mimetype().to_string();
    let mut response = (StatusCode::OK, file.data.into_owned()).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Some(response)
}

/// `GET /` (without `Action`): the single page.
pub fn index() -> Response {
    serve("index.html").unwrap_or_else(|| {
        ApiError::NotFound {
            method: "GET".to_string(),
            path: "/".to_string(),
        }
        .into_response()
    })
}

/// `GET /ui/{*path}`: a script, style sheet or image.
pub async fn asset(Path(path): Path<String>) -> Response {
    serve(&path).unwrap_or_else(|| {
        ApiError::NotFound {
            method: "GET".to_string(),
            path: format!("/ui/{path}"),
        }
        .into_response()
    })
}

/// `GET /v1/dashboard/push/{queue}`'s answer: the push subscription, or `null` when the queue
/// has none.
#[derive(Debug, Serialize)]
pub struct PushStatus {
    pub push: Option<proto::PushInfo>,
}

/// `GET /v1/dashboard/push/{queue}`: as `GET /v1/queues/{q}/push`, but "no subscription" is a
/// 200 with `null` rather than a 404 — the queue page asks for every queue, and a browser logs
/// every 404 as a console error. An unknown queue is still 404 `queue_not_found`.
pub async fn push(
    State(state): State<AppState>,
    Path(queue): Path<String>,
) -> Result<Json<PushStatus>, ApiError> {
    let name = baton_core::QueueName::new(&queue)?;
    match state.push.get(&name).await {
        Ok(info) => Ok(Json(PushStatus { push: Some(info) })),
        Err(ServiceError::PushNotConfigured { .. }) => Ok(Json(PushStatus { push: None })),
        Err(error) => Err(error.into()),
    }
}
