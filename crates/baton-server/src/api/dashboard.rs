//! The web dashboard: hand-written HTML, CSS and JavaScript modules from the repository's
//! `dashboard/` folder, embedded in the binary at build time (no CDN, nothing fetched at run
//! time). `GET /` without an SQS `Action` answers `index.html`; everything else is under
//! `/ui/`. The pages read the native API and the live stream (`/v1/live/stats`).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::api::error::ApiError;

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
