//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) as the SQS API checks it: pure functions over
//! a request's method, raw path and query, headers, body and the current time. No I/O, no
//! clock, no key lookup (the caller finds the secret by [`Signature::access_key_id`]).
//!
//! Both ways of carrying a signature are read: the `Authorization` header (with `X-Amz-Date`)
//! and a presigned URL (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature` in the query). The canonical request follows AWS's
//! specification for services other than S3, as botocore and the other SDKs sign for SQS:
//! the path normalised (dot segments and repeated slashes removed) and URI-encoded once more
//! than on the wire, the query's pairs decoded, re-encoded (RFC 3986 unreserved characters
//! only) and sorted, each signed header's values trimmed, inner spaces collapsed and joined
//! with `,`, and the body's SHA-256.
//!
//! Invariants:
//! - The payload hash is always the body's own: an `x-amz-content-sha256` header that differs
//!   from it is refused, and `UNSIGNED-PAYLOAD` is refused (botocore never sends it for SQS:
//!   only S3, and operations modelled without body signing over https, use it), so a
//!   verified signature covers the whole body.
//! - Any region is accepted; the service must be `sqs` and the scope's date the request's.
//! - The request time may differ from `now` by [`SKEW_MS`] either way; a presigned URL is
//!   good until its `X-Amz-Expires` (at most [`PRESIGNED_EXPIRES_MAX_S`]) has passed.
//! - Signatures are compared in constant time.

use axum::http::HeaderMap;
use chrono::NaiveDateTime;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name a credential scope must carry.
pub const SERVICE: &str = "sqs";
const TERMINATOR: &str = "aws4_request";
/// How far the request's time may be from the server's, either way (AWS: 15 minutes).
pub const SKEW_MS: u64 = 15 * 60 * 1000;
/// The longest validity of a presigned URL (AWS: 7 days).
pub const PRESIGNED_EXPIRES_MAX_S: u64 = 7 * 24 * 3600;
const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The parts of a request a signature covers. `path` and `query` are as on the wire (still
/// percent-encoded); `authority` stands in for a missing `Host` header (HTTP/2).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Why a request's signature is not accepted, each as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// No `Authorization` header and no presigned query: `MissingAuthenticationToken`.
    Missing,
    /// A malformed header or query signature: `IncompleteSignature` (400).
    Incomplete(String),
    /// The access key id is unknown or revoked: `InvalidClientTokenId` (403).
    UnknownKey,
    /// The Baton key behind the access key id has expired: `ExpiredToken` (403).
    ExpiredKey,
    /// The request's time is too far from now, or a presigned URL has expired:
    /// `RequestExpired` (400).
    Expired(String),
    /// The scope, the payload hash or the signature itself is wrong: `SignatureDoesNotMatch`.
    Mismatch(String),
}

/// A signature as the request carries it, checked for shape only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    pub terminator: String,
    /// Lower-case header names, in the order given.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// `X-Amz-Date` as given, and as milliseconds since the epoch.
    pub amz_date: String,
    pub time_ms: u64,
    /// `X-Amz-Expires` of a presigned URL; `None` for a header signature.
    pub expires_s: Option<u64>,
}

/// The message AWS gives with `SignatureDoesNotMatch`.
pub const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Reads the signature of `request`, from its `Authorization` header or else its query.
pub fn parse(request: &Request<'_>) -> Result<Signature, SigError> {
    if let Some(header) = request.headers.get("authorization") {
        let header = String::from_utf8_lossy(header.as_bytes());
        return parse_header(&header, request.headers);
    }
    let pairs = query_pairs(request.query.unwrap_or_default());
    if pairs.iter().any(|(k, _)| k == "X-Amz-Algorithm") {
        return parse_presigned(&pairs);
    }
    Err(SigError::Missing)
}

fn parse_header(header: &str, headers: &HeaderMap) -> Result<Signature, SigError> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Only '{ALGORITHM}' is supported (Signature Version 4)."
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else {
            continue;
        };
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => {}
        }
    }
    let amz_date = headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
    let mut missing = Vec::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if amz_date.is_none() {
        missing.push("Authorization header requires existence of a 'X-Amz-Date' header.".into());
    }
    if !missing.is_empty() {
        return Err(SigError::Incomplete(format!(
            "{} Authorization={algorithm}",
            missing.join(" ")
        )));
    }
    build(
        credential.unwrap_or_default(),
        signed_headers.unwrap_or_default(),
        signature.unwrap_or_default(),
        &amz_date.unwrap_or_default(),
        None,
    )
}

fn parse_presigned(pairs: &[(String, String)]) -> Result<Signature, SigError> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let names = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ];
    let missing: Vec<&str> = names.into_iter().filter(|n| get(n).is_none()).collect();
    if !missing.is_empty() {
        return Err(SigError::Incomplete(format!(
            "A presigned request requires the query parameters {}; missing: {}.",
            names.join(", "),
            missing.join(", ")
        )));
    }
    let algorithm = get("X-Amz-Algorithm").unwrap_or_default();
    if algorithm != ALGORITHM {
        return Err(SigError::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'. Only '{ALGORITHM}' is supported (Signature Version 4)."
        )));
    }
    let expires = get("X-Amz-Expires").unwrap_or_default();
    let expires_s = expires
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=PRESIGNED_EXPIRES_MAX_S).contains(s))
        .ok_or_else(|| {
            SigError::Incomplete(format!(
                "X-Amz-Expires must be a whole number of seconds from 1 to {PRESIGNED_EXPIRES_MAX_S} (it is '{expires}')."
            ))
        })?;
    build(
        get("X-Amz-Credential").unwrap_or_default(),
        get("X-Amz-SignedHeaders").unwrap_or_default(),
        get("X-Amz-Signature").unwrap_or_default(),
        get("X-Amz-Date").unwrap_or_default(),
        Some(expires_s),
    )
}

fn build(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &str,
    expires_s: Option<u64>,
) -> Result<Signature, SigError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts[..] else {
        return Err(SigError::Incomplete(format!(
            "Credential is not <access key id>/<date>/<region>/<service>/aws4_request: '{credential}'."
        )));
    };
    if access_key_id.is_empty() {
        return Err(SigError::Incomplete(
            "Credential names no access key id.".into(),
        ));
    }
    let time = NaiveDateTime::parse_from_str(amz_date, AMZ_DATE_FORMAT).map_err(|_| {
        SigError::Incomplete(format!(
            "X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z': '{amz_date}'."
        ))
    })?;
    let time_ms = u64::try_from(time.and_utc().timestamp_millis())
        .map_err(|_| SigError::Incomplete(format!("X-Amz-Date is before 1970: '{amz_date}'.")))?;
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigError::Incomplete(format!(
            "Signature must be 64 hexadecimal digits: '{signature}'."
        )));
    }
    Ok(Signature {
        access_key_id: access_key_id.to_string(),
        scope_date: scope_date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        amz_date: amz_date.to_string(),
        time_ms,
        expires_s,
    })
}

/// Checks `signature` (parsed from `request`) with the secret of its access key, at `now_ms`.
pub fn verify(
    request: &Request<'_>,
    signature: &Signature,
    secret: &str,
    now_ms: u64,
) -> Result<(), SigError> {
    check_scope(signature)?;
    check_time(signature, now_ms)?;
    let payload = payload_hash(request)?;
    let canonical = canonical_request(
        request,
        &signature.signed_headers,
        &payload,
        signature.expires_s.is_some(),
    );
    let expected = sign_canonical(
        secret,
        &signature.amz_date,
        &signature.scope_date,
        &signature.region,
        &canonical,
    );
    if bool::from(expected.as_bytes().ct_eq(signature.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigError::Mismatch(MISMATCH.to_string()))
    }
}

fn check_scope(signature: &Signature) -> Result<(), SigError> {
    if signature.service != SERVICE {
        return Err(SigError::Mismatch(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if signature.terminator != TERMINATOR {
        return Err(SigError::Mismatch(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            signature.terminator
        )));
    }
    let date = signature.amz_date.get(..8).unwrap_or_default();
    if signature.scope_date != date {
        return Err(SigError::Mismatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{date}', from '{}'.",
            signature.scope_date, signature.amz_date
        )));
    }
    Ok(())
}

fn check_time(signature: &Signature, now_ms: u64) -> Result<(), SigError> {
    let t = signature.time_ms;
    if t > now_ms.saturating_add(SKEW_MS) {
        return Err(SigError::Expired(format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            signature.amz_date,
            amz_date(now_ms + SKEW_MS),
            amz_date(now_ms)
        )));
    }
    match signature.expires_s {
        Some(expires_s) if now_ms > t.saturating_add(expires_s * 1000) => Err(SigError::Expired(
            format!(
                "Request has expired: the presigned URL of {} was good for {expires_s} s, until {}.",
                signature.amz_date,
                amz_date(t + expires_s * 1000)
            ),
        )),
        None if t.saturating_add(SKEW_MS) < now_ms => Err(SigError::Expired(format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            signature.amz_date,
            amz_date(now_ms - SKEW_MS),
            amz_date(now_ms)
        ))),
        _ => Ok(()),
    }
}

/// `ms` since the epoch in the `X-Amz-Date` format.
pub fn amz_date(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .map(|t| t.format(AMZ_DATE_FORMAT).to_string())
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// The payload hash of the canonical request: the body's SHA-256, which a given
/// `x-amz-content-sha256` must equal (see the module's invariants).
fn payload_hash(request: &Request<'_>) -> Result<String, SigError> {
    let actual = sha256_hex(request.body);
    let Some(given) = request.headers.get("x-amz-content-sha256") else {
        return Ok(actual);
    };
    let given = String::from_utf8_lossy(given.as_bytes())
        .trim()
        .to_ascii_lowercase();
    if given == actual {
        return Ok(actual);
    }
    Err(SigError::Mismatch(if given == "unsigned-payload" {
        "UNSIGNED-PAYLOAD is not accepted on the SQS API: sign the body's SHA-256.".to_string()
    } else {
        "The provided 'x-amz-content-sha256' header does not match what was computed.".to_string()
    }))
}

/// Every `key=value` pair of a raw query, percent-decoded (a `+` stays a `+`: the SDKs
/// encode spaces as `%20`).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 encoding as SigV4 wants it: every byte but `A-Za-z0-9-_.~` (and `/` when
/// `keep_slash`) as `%XX` in upper case.
fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && byte == b'/')
        {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The path with dot segments and empty segments removed (a trailing slash kept).
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if path.ends_with('/') && out.len() > 1 {
        out.push('/');
    }
    out
}

fn canonical_query(query: Option<&str>, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(query.unwrap_or_default())
        .into_iter()
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn header_value(request: &Request<'_>, name: &str) -> String {
    let values: Vec<String> = request
        .headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    if values.is_empty() && name == "host" {
        return request.authority.unwrap_or_default().to_string();
    }
    values.join(",")
}

/// The canonical request of AWS's specification (see the module doc).
pub fn canonical_request(
    request: &Request<'_>,
    signed_headers: &[String],
    payload_hash: &str,
    presigned: bool,
) -> String {
    let mut out = String::new();
    out.push_str(&request.method.to_ascii_uppercase());
    out.push('\n');
    out.push_str(&uri_encode(&normalize_path(request.path), true));
    out.push('\n');
    out.push_str(&canonical_query(request.query, presigned));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(request, name));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

fn hmac(key: &[u8], data: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The signature (hex) of a canonical request: the string to sign, HMAC'ed with the key
/// derived from `secret` for this date, region and the service `sqs`.
pub fn sign_canonical(
    secret: &str,
    amz_date: &str,
    scope_date: &str,
    region: &str,
    canonical: &str,
) -> String {
    sign_canonical_for(secret, amz_date, scope_date, region, SERVICE, canonical)
}

fn sign_canonical_for(
    secret: &str,
    amz_date: &str,
    scope_date: &str,
    region: &str,
    service: &str,
    canonical: &str,
) -> String {
    let scope = format!("{scope_date}/{region}/{service}/{TERMINATOR}");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = hmac(format!("AWS4{secret}").as_bytes(), scope_date);
    let key = hmac(&key, region);
    let key = hmac(&key, service);
    let key = hmac(&key, TERMINATOR);
    hex(&hmac(&key, &string_to_sign))
}

/// Signs a request as an SDK does (for Baton's own clients and tests): the `Authorization`
/// header value over every header of `request` (which must hold `host` and `x-amz-date`;
/// their names sorted), for `access_key_id`/`secret` in `region`.
pub fn authorization(
    request: &Request<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
) -> String {
    let mut names: Vec<String> = request
        .headers
        .keys()
        .map(|n| n.as_str().to_ascii_lowercase())
        .filter(|n| n != "authorization")
        .collect();
    names.sort();
    names.dedup();
    let amz_date = header_value(request, "x-amz-date");
    let scope_date = amz_date.get(..8).unwrap_or_default().to_string();
    let canonical = canonical_request(request, &names, &sha256_hex(request.body), false);
    let signature = sign_canonical(secret, &amz_date, &scope_date, region, &canonical);
    format!(
        "{ALGORITHM} Credential={access_key_id}/{scope_date}/{region}/{SERVICE}/{TERMINATOR}, SignedHeaders={}, Signature={signature}",
        names.join(";")
    )
}

/// The query of a presigned URL for `request` (whose query is the one to keep, and whose
/// headers hold `host`, the one signed header): the query plus the `X-Amz-*` parameters,
/// valid `expires_s` seconds from `time_ms`.
pub fn presign(
    request: &Request<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    time_ms: u64,
    expires_s: u64,
) -> String {
    let amz_date = amz_date(time_ms);
    let scope_date = amz_date.get(..8).unwrap_or_default().to_string();
    let credential = format!("{access_key_id}/{scope_date}/{region}/{SERVICE}/{TERMINATOR}");
    let mut query = request.query.unwrap_or_default().to_string();
    for (name, value) in [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", &credential),
        ("X-Amz-Date", &amz_date),
        ("X-Amz-Expires", &expires_s.to_string()),
        ("X-Amz-SignedHeaders", "host"),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("{name}={}", uri_encode(value, false)));
    }
    let unsigned = Request {
        query: Some(&query),
        ..*request
    };
    let canonical = canonical_request(
        &unsigned,
        &["host".to_string()],
        &sha256_hex(request.body),
        true,
    );
    let signature = sign_canonical(secret, &amz_date, &scope_date, region, &canonical);
    format!("{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
