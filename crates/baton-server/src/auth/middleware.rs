//! The check in front of every route: the route's [`Rule`] (from [`routes::ROUTES`]), the
//! key of `Authorization: Bearer <key>`, and its permission. Runs as a route layer, so it sees
//! the matched route template; while keys exist, a route or method without an entry is refused
//! (fail closed). Without keys it checks nothing (one atomic load). The SQS API is let through
//! to its handler, which checks AWS Signature Version 4 itself (`api::sqs`): the signature
//! covers the body, which only the handler reads.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_proto::KeyAction;

use super::routes::{self, Rule};
use super::rules;
use super::store::{KeyEntry, Mode};
use crate::api::error::ApiError;
use crate::api::sqs;
use crate::service::ServiceError;
use crate::state::AppState;

/// Who is calling, for handlers that filter (listings): `None` while no key exists.
#[derive(Clone)]
pub struct Caller(pub Option<Arc<KeyEntry>>);

impl Caller {
    /// Whether the caller may see `resource` (in a listing).
    pub fn sees(&self, resource: &str) -> bool {
        self.0.as_ref().is_none_or(|key| key.grants.sees(resource))
    }
}

/// What the rule asks of the key: `(Some(action), resource)`, or `(None, resource)` for any
/// action on it; nothing for rules any valid key passes.
fn needed(rule: Rule, params: &[(String, String)]) -> Option<(Option<KeyAction>, String)> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    match rule {
        Rule::On(action, kind, name) => Some((Some(action), format!("{kind}:{}", param(name)))),
        Rule::See(kind, name) => Some((None, format!("{kind}:{}", param(name)))),
        Rule::Fixed(action, resource) => Some((Some(action), resource.to_string())),
        Rule::SeeFixed(resource) => Some((None, resource.to_string())),
        Rule::Metrics => Some((Some(KeyAction::Admin), rules::SERVER_RESOURCE.to_string())),
        Rule::Open | Rule::Key | Rule::List | Rule::Sqs | Rule::Wire => None,
    }
}

fn check(key: &KeyEntry, needed: Option<(Option<KeyAction>, String)>) -> Result<(), ServiceError> {
    let Some((action, resource)) = needed else {
        return Ok(());
    };
    let allowed = match action {
        Some(action) => key.grants.allows(action, &resource),
        None => key.grants.sees(&resource),
    };
    if allowed {
        return Ok(());
    }
    Err(ServiceError::Forbidden {
        key: key.name.clone(),
        action: action.map_or("any action", KeyAction::as_str).to_string(),
        resource,
    })
}

/// The middleware: see the module doc.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Without keys nothing is checked: one atomic load per request. Handlers that filter
    // treat a missing `Caller` as "sees everything".
    if state.keys.mode() == Mode::Open {
        return next.run(request).await;
    }
    let Some(template) = request.extensions().get::<MatchedPath>().cloned() else {
        // Route layers only run for matched routes; anything else is refused.
        return unmapped(&request).into_response();
    };
    let template = template.as_str();
    let rule = match routes::rule(request.method().as_str(), template) {
        Ok(rule) => rule,
        // A method the table does not name is never let through, even if the router had it.
        Err(true) => {
            return ApiError::MethodNotAllowed {
                method: request.method().to_string(),
                path: request.uri().path().to_string(),
            }
            .into_response()
        }
        Err(false) => return unmapped(&request).into_response(),
    };
    let config = &state.config;
    if rule == Rule::Open
        || (rule == Rule::Metrics && config.metrics_public)
        || (rule == Rule::Sqs
            && template == "/"
            && sqs::is_dashboard(request.method(), request.uri().query()))
    {
        return next.run(request).await;
    }
    match state.keys.mode() {
        // The dashboard's stream says `unavailable` itself, and ends if keys turn out to be
        // required (`api::live_stats`): EventSource does not come back after a 503.
        Mode::Loading if template == "/v1/live/stats" => {
            return with_caller(request, next, None).await
        }
        Mode::Loading => return loading(rule, &request),
        Mode::Open => return with_caller(request, next, None).await,
        Mode::Enforced => {}
    }
    match rule {
        // `api::sqs::handle` verifies the signature and each action's permission, or lets
        // the request through unchecked with `sqs_without_auth`.
        Rule::Sqs => return next.run(request).await,
        Rule::Wire if config.wire_without_auth => return next.run(request).await,
        Rule::Wire => return ApiError::from(wire_closed()).into_response(),
        _ => {}
    }
    let key = match bearer_key(&state, &request) {
        Ok(key) => key,
        Err(error) => return ApiError::from(error).into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let params: Vec<(String, String)> =
        match RawPathParams::from_request_parts(&mut parts, &()).await {
            Ok(params) => params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            Err(rejection) => return rejection.into_response(),
        };
    if let Err(error) = check(&key, needed(rule, &params)) {
        return ApiError::from(error).into_response();
    }
    with_caller(Request::from_parts(parts, body), next, Some(key)).await
}

/// Why the framed protocol is refused while keys exist.
pub fn wire_closed() -> ServiceError {
    ServiceError::Unauthorized {
        reason: "API keys exist on this Baton server and the framed protocol has no authentication yet, so it is closed; use the HTTP API with a key, or set `wire_without_auth = true` to open it".to_string(),
    }
}

fn bearer_key(state: &AppState, request: &Request) -> Result<Arc<KeyEntry>, ServiceError> {
    let header = request.headers().get(AUTHORIZATION);
    let Some(header) = header else {
        return Err(ServiceError::Unauthorized {
            reason: "this server requires an API key: send `Authorization: Bearer <key>`"
                .to_string(),
        });
    };
    let token = header
        .to_str()
        .ok()
        .and_then(rules::bearer)
        .ok_or_else(|| ServiceError::Unauthorized {
            reason: "the Authorization header is not `Bearer <key>`".to_string(),
        })?;
    state.keys.authenticate(token)
}

async fn with_caller(mut request: Request, next: Next, key: Option<Arc<KeyEntry>>) -> Response {
    request.extensions_mut().insert(Caller(key));
    next.run(request).await
}

fn loading(rule: Rule, request: &Request) -> Response {
    let reason = "the server is starting: storage and API keys are not loaded yet";
    if rule == Rule::Sqs {
        return sqs::refuse_loading(request.headers(), reason.to_string());
    }
    ApiError::from(ServiceError::Engine(baton_engine::EngineError::NotReady)).into_response()
}

fn unmapped(request: &Request) -> ApiError {
    ApiError::from(ServiceError::Internal(format!(
        "no permission rule covers {} {}, so it is refused (a bug: every route needs an entry in auth::routes::ROUTES)",
        request.method(),
        request.uri().path()
    )))
}

/// Whether the framed protocol must refuse requests now, and with what.
pub fn wire_refusal(state: &AppState) -> Option<ServiceError> {
    match state.keys.mode() {
        Mode::Open => None,
        Mode::Loading => Some(ServiceError::Engine(baton_engine::EngineError::NotReady)),
        Mode::Enforced if state.config.wire_without_auth => None,
        Mode::Enforced => Some(wire_closed()),
    }
}
