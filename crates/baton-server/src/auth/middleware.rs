//! The check in front of every route: the route's [`Rule`] (from [`routes::ROUTES`]), the
//! key of `Authorization: Bearer <key>`, and its permission. Runs as a route layer, so it sees
//! the matched route template; while keys exist, a route or method without an entry is refused
//! (fail closed). It also applies the rate limits (`rate_limits`): the client address's before
//! the key is looked at, the key's once it is known. Without keys and rate limits it checks
//! nothing (two loads). The SQS API is let through to its handler, which checks AWS Signature
//! Version 4 itself (`api::sqs`): the signature covers the body, which only the handler reads;
//! it applies the key's rate too.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_proto::KeyAction;

use super::audit::{self, Entry, Outcome};
use super::routes::{self, Rule};
use super::rules;
use super::store::{KeyEntry, Mode};
use super::tickets;
use crate::api::error::ApiError;
use crate::api::sqs;
use crate::caller_limits::{LiveSlot, SlotKind, Who};
use crate::http_listener::ClientAddr;
use crate::rate_limits::Charged;
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

    /// Completes when the caller's key stops being valid (revoked, replaced, expired); never
    /// without a key. Live streams end then.
    pub fn ended(&self) -> futures::future::BoxFuture<'static, ()> {
        match &self.0 {
            Some(key) => Box::pin(key.ended()),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// [`Caller::ended`] of a handler's optional caller.
pub fn caller_ended(caller: Option<&Caller>) -> futures::future::BoxFuture<'static, ()> {
    caller.map_or_else(|| Box::pin(std::future::pending()) as _, Caller::ended)
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

/// The key a request to `template` (with its path `params`) is let through with when
/// `authorize` would only check its key and do nothing else for it: keys enforced, no rate or
/// caller limits, an action whose success is not audited, a bearer key that is valid and
/// holds the permission. `None` in every other case (including every refusal), for the
/// router to answer — the hot routes (`api::hot`) use this to run exactly when the router's
/// check would pass a request straight through.
pub(crate) fn admitted_key(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    method: &str,
    template: &str,
    params: &[(String, String)],
) -> Option<Arc<KeyEntry>> {
    if state.keys.mode() != Mode::Enforced
        || !state.rate_limits.is_off()
        || !state.caller_limits.is_off()
    {
        return None;
    }
    let rule = routes::rule(method, template).ok()?;
    let need = needed(rule, params)?;
    if audit::audits_success(need.0) {
        return None;
    }
    let token = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()
        .and_then(rules::bearer)?;
    let key = state.keys.authenticate(token).ok()?;
    check(&key, Some(need)).ok()?;
    Some(key)
}

/// The middleware: see the module doc.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limited = !state.rate_limits.is_off();
    // Without keys and limits nothing is checked: three loads per request. Handlers that
    // filter treat a missing `Caller` as "sees everything".
    if state.keys.mode() == Mode::Open && !limited && state.caller_limits.is_off() {
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
    let client = client_ip(&request);
    let mut charged = Charged::default();
    let bytes = request_bytes(&request);
    if let (true, Some(ip)) = (limited, client) {
        if let Err(error) = state.rate_limits.admit_client(ip, bytes, &mut charged) {
            refused(&state, &request, None, (None, "-"), Outcome::RateLimited);
            if rule == Rule::Sqs {
                return sqs::refuse_throttled(request.headers(), &error);
            }
            return ApiError::from(error).into_response();
        }
    }
    match state.keys.mode() {
        // The dashboard's stream says `unavailable` itself, and ends if keys turn out to be
        // required (`api::live_stats`): EventSource does not come back after a 503.
        Mode::Loading if template == "/v1/live/stats" => {
            return with_caller(&state, request, next, None, charged).await
        }
        Mode::Loading => return loading(rule, &request),
        Mode::Open => return with_caller(&state, request, next, None, charged).await,
        Mode::Enforced => {}
    }
    match rule {
        // `api::sqs::handle` verifies the signature and each action's permission (and the
        // key's rate, and audits), or lets the request through unchecked with
        // `sqs_without_auth`.
        Rule::Sqs => return with_caller(&state, request, next, None, charged).await,
        // The framed protocol authenticates in the protocol (an auth frame), per connection.
        Rule::Wire => return next.run(request).await,
        _ => {}
    }
    let (ticket, request) = take_ticket(request);
    let key = match ticket {
        Some(ticket) => tickets::verify(&state.keys, &ticket),
        None => bearer_key(&state, &request),
    };
    let key = match key {
        Ok(key) => key,
        Err(error) => {
            refused(&state, &request, None, (None, "-"), Outcome::Unauthorized);
            return ApiError::from(error).into_response();
        }
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
    let need = needed(rule, &params);
    let request = Request::from_parts(parts, body);
    let (action, resource) = match &need {
        Some((action, resource)) => (*action, resource.as_str()),
        None => (None, "-"),
    };
    if let Err(error) = check(&key, need.clone()) {
        refused(
            &state,
            &request,
            Some(&key.name),
            (action, resource),
            Outcome::Forbidden,
        );
        return ApiError::from(error).into_response();
    }
    if let Err(error) = state.rate_limits.admit_key(&key.name, bytes, &mut charged) {
        let outcome = Outcome::RateLimited;
        refused(
            &state,
            &request,
            Some(&key.name),
            (action, resource),
            outcome,
        );
        return ApiError::from(error).into_response();
    }
    if !audit::audits_success(action) {
        return with_caller(&state, request, next, Some(key), charged).await;
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let resource = resource.to_string();
    let name = key.name.clone();
    let response = with_caller(&state, request, next, Some(key), charged).await;
    let status = response.status().as_u16();
    state.audit.record(&Entry {
        key: Some(&name),
        action,
        resource: &resource,
        outcome: Outcome::of_status(status),
        status,
        client,
        method: method.as_str(),
        path: &path,
    });
    response
}

/// A `GET` without `Authorization` may carry a ticket (`?ticket=`, `auth::tickets`): taken
/// out of the URI, so handlers and logs never see it.
fn take_ticket(request: Request) -> (Option<String>, Request) {
    let has_ticket = request.method() == axum::http::Method::GET
        && !request.headers().contains_key(AUTHORIZATION)
        && request.uri().query().is_some_and(|q| q.contains("ticket="));
    if !has_ticket {
        return (None, request);
    }
    let Some((ticket, rest)) = request.uri().query().and_then(tickets::take_from_query) else {
        return (None, request);
    };
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path();
    let path_and_query = match rest {
        Some(rest) => format!("{path}?{rest}"),
        None => path.to_string(),
    };
    let mut uri = parts.uri.clone().into_parts();
    if let Ok(path_and_query) = path_and_query.parse() {
        uri.path_and_query = Some(path_and_query);
        if let Ok(uri) = axum::http::Uri::from_parts(uri) {
            parts.uri = uri;
        }
    }
    (Some(ticket), Request::from_parts(parts, body))
}

/// The client's IP address, as the listener saw it.
fn client_ip(request: &Request) -> Option<std::net::IpAddr> {
    ClientAddr::ip_of(request.extensions())
}

/// Audits a request refused before its operation ran.
fn refused(
    state: &AppState,
    request: &Request,
    key: Option<&str>,
    (action, resource): (Option<KeyAction>, &str),
    outcome: Outcome,
) {
    let status = match outcome {
        Outcome::Unauthorized => 401,
        Outcome::Forbidden => 403,
        Outcome::RateLimited => 429,
        Outcome::Ok | Outcome::Failed => 0,
    };
    state.audit.record(&Entry {
        key,
        action,
        resource,
        outcome,
        status,
        client: client_ip(request),
        method: request.method().as_str(),
        path: request.uri().path(),
    });
}

/// The bytes a request is charged for up front: its body's declared length.
fn request_bytes(request: &Request) -> u64 {
    request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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

/// Runs the request as `key`; the answer's bytes are charged to the callers it was
/// admitted for (a streamed answer, whose size is not known, is not).
async fn with_caller(
    state: &AppState,
    mut request: Request,
    next: Next,
    key: Option<Arc<KeyEntry>>,
    charged: Charged,
) -> Response {
    let caller = Caller(key);
    // A live stream holds one of its key's and its client's slots while it is open.
    let live = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| is_live_route(path.as_str()));
    let slot = if live && !state.caller_limits.is_off() {
        let who = Who {
            key: caller.0.clone(),
            client: client_ip(&request),
        };
        match state.caller_limits.take_for(SlotKind::LiveStream, &who) {
            Ok(slot) => {
                let slot = Arc::new(slot);
                // WebSocket handlers move it into their socket's task.
                request.extensions_mut().insert(LiveSlot(slot.clone()));
                Some(slot)
            }
            Err(error) => return ApiError::from(error).into_response(),
        }
    } else {
        None
    };
    request.extensions_mut().insert(caller.clone());
    let response = next.run(request).await;
    if let Some(bytes) = axum::body::HttpBody::size_hint(response.body()).exact() {
        state.rate_limits.charge_answer(&charged, bytes);
    }
    // A live stream (SSE) opened with a key ends when the key is revoked or expires.
    let streams = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if streams && (caller.0.is_some() || slot.is_some()) {
        let ended = caller.ended();
        return response.map(|body| {
            let stream = futures::StreamExt::take_until(body.into_data_stream(), ended);
            // The slot goes with the stream, given back when the client goes away.
            let stream = futures::StreamExt::map(stream, move |chunk| {
                let _held = &slot;
                chunk
            });
            axum::body::Body::from_stream(stream)
        });
    }
    response
}

/// Whether a route is a live stream (SSE or WebSocket).
fn is_live_route(template: &str) -> bool {
    template.ends_with("/live") || template.ends_with("/ws") || template == "/v1/live/stats"
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

/// The permission a framed-protocol op needs on its queue, as the same HTTP call does;
/// `None` for the auth frame itself.
pub fn wire_action(op: baton_proto::wire::Op) -> Option<KeyAction> {
    use baton_proto::wire::Op;
    match op {
        Op::Send => Some(KeyAction::Send),
        Op::Receive | Op::Ack | Op::Nack => Some(KeyAction::Receive),
        Op::Auth => None,
    }
}

/// Whether a framed-protocol request (`op` on `queue`) may be served for a connection that
/// authenticated as `key` (or did not): the same permissions as the HTTP routes of the same
/// calls. Checked per request, so a key revoked, expired or created while a connection is
/// open takes effect on it too.
pub fn wire_access(
    state: &AppState,
    key: Option<&Arc<KeyEntry>>,
    op: baton_proto::wire::Op,
    queue: &str,
) -> Result<(), ServiceError> {
    match state.keys.mode() {
        Mode::Open => return Ok(()),
        Mode::Loading => return Err(ServiceError::Engine(baton_engine::EngineError::NotReady)),
        Mode::Enforced => {}
    }
    let Some(key) = key else {
        if state.config.wire_without_auth {
            return Ok(());
        }
        return Err(ServiceError::Unauthorized {
            reason: "this server requires an API key: authenticate the connection first with an auth frame (op 5) carrying the key".to_string(),
        });
    };
    state.keys.still_valid(key)?;
    let Some(action) = wire_action(op) else {
        return Ok(());
    };
    check(key, Some((Some(action), format!("queue:{queue}"))))
}
