//! The canonicalisation against AWS's published Signature Version 4 test suite (credentials
//! `AKIDEXAMPLE`, 2015-08-30T12:36:00Z, region `us-east-1`, service `service`), and the
//! checks of `verify` on requests this module signs.

#![allow(clippy::unwrap_used)]

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20150830T123600Z";

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// The signature of one test-suite case: `target` is the path and query as the suite gives
/// them, `extra` headers besides `host` and `x-amz-date`.
fn suite(method: &str, target: &str, extra: &[(&str, &str)]) -> (String, String) {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut pairs = vec![("host", "example.amazonaws.com"), ("x-amz-date", AMZ_DATE)];
    pairs.extend_from_slice(extra);
    let map = headers(&pairs);
    let mut names: Vec<String> = pairs.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    let request = Request {
        method,
        path,
        query,
        authority: None,
        headers: &map,
        body: b"",
    };
    let canonical = canonical_request(&request, &names, &sha256_hex(b""), false);
    let signature = sign_canonical_for(
        SECRET,
        AMZ_DATE,
        "20150830",
        "us-east-1",
        "service",
        &canonical,
    );
    (canonical, signature)
}

/// A test-suite case: name, `METHOD target`, extra headers, expected signature.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn aws_test_suite_vectors() {
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let (canonical, signature) = suite("GET", "/", &[]);
    assert_eq!(
        canonical,
        format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{empty}")
    );
    assert_eq!(
        signature,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    let cases: [Case; 9] = [
        ("post-vanilla", "POST", &[], "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1", &[], "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("get-vanilla-query-order-key", "GET /?Param1=value2&Param1=Value1", &[], "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        ("get-vanilla-query-order-value", "GET /?Param1=value2&Param1=value1", &[], "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"),
        ("get-vanilla-query-unreserved", "GET /?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", &[], "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
        ("get-vanilla-utf8-query", "GET /?\u{1234}=bar", &[], "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        ("normalize-path/get-slashes", "GET //example//", &[], "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
        ("normalize-path/get-space", "GET /example space/", &[], "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
        ("post-header-key-sort", "POST", &[("my-header1", "value1")], "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
    ];
    for (name, line, extra, expected) in cases {
        let (method, target) = line.split_once(' ').unwrap_or((line, "/"));
        let (_, signature) = suite(method, target, extra);
        assert_eq!(signature, expected, "{name}");
    }
    // The dot segments of normalize-path/get-relative-relative sign as `/`.
    assert_eq!(
        suite("GET", "/example1/example2/../..", &[]).1,
        suite("GET", "/", &[]).1
    );
}

#[test]
fn header_values_are_trimmed_collapsed_and_joined() {
    let map = headers(&[
        ("host", "h"),
        ("my-header", "  a   b  "),
        ("my-header", "c"),
    ]);
    let request = Request {
        method: "post",
        path: "/",
        query: None,
        authority: None,
        headers: &map,
        body: b"",
    };
    let canonical = canonical_request(&request, &["host".into(), "my-header".into()], "x", false);
    assert!(
        canonical.starts_with("POST\n/\n\nhost:h\nmy-header:a b,c\n\n"),
        "{canonical}"
    );
}

const NOW: u64 = 1_440_938_160_000; // 2015-08-30T12:36:00Z

struct Signed {
    headers: HeaderMap,
    body: Vec<u8>,
}

fn signed(secret: &str, at_ms: u64, body: &[u8], region: &str) -> Signed {
    let mut map = headers(&[
        ("host", "127.0.0.1:9324"),
        ("x-amz-date", &amz_date(at_ms)),
        ("x-amz-target", "AmazonSQS.SendMessage"),
        ("content-type", "application/x-amz-json-1.0"),
    ]);
    let authorization = authorization(
        &Request {
            method: "POST",
            path: "/",
            query: None,
            authority: None,
            headers: &map,
            body,
        },
        "BKIAEXAMPLE",
        secret,
        region,
    );
    map.insert(
        "authorization",
        HeaderValue::from_str(&authorization).unwrap(),
    );
    Signed {
        headers: map,
        body: body.to_vec(),
    }
}

fn check(signed: &Signed, body: &[u8], secret: &str, now: u64) -> Result<Signature, SigError> {
    let request = Request {
        method: "POST",
        path: "/",
        query: None,
        authority: None,
        headers: &signed.headers,
        body,
    };
    let signature = parse(&request)?;
    verify(&request, &signature, secret, now).map(|()| signature)
}

#[test]
fn header_signatures_verify_and_fail_precisely() {
    let body = br#"{"QueueUrl":"http://127.0.0.1:9324/000000000000/q","MessageBody":"hi"}"#;
    let good = signed("secret-1", NOW, body, "eu-west-3");
    let signature = check(&good, body, "secret-1", NOW).unwrap();
    assert_eq!(signature.access_key_id, "BKIAEXAMPLE");
    assert_eq!(signature.region, "eu-west-3");
    // 15 minutes either way is accepted, a second more is not.
    assert!(check(&good, body, "secret-1", NOW + SKEW_MS).is_ok());
    assert!(check(&good, body, "secret-1", NOW - SKEW_MS).is_ok());
    let old = check(&good, body, "secret-1", NOW + SKEW_MS + 1000).unwrap_err();
    assert!(
        matches!(&old, SigError::Expired(m) if m.starts_with("Signature expired: 20150830T123600Z is now earlier than")),
        "{old:?}"
    );
    assert!(matches!(
        check(&good, body, "secret-1", NOW - SKEW_MS - 1000),
        Err(SigError::Expired(m)) if m.starts_with("Signature not yet current")
    ));
    // Another secret, or one byte of the body changed, is a mismatch.
    assert_eq!(
        check(&good, body, "secret-2", NOW).unwrap_err(),
        SigError::Mismatch(MISMATCH.into())
    );
    let mut tampered = body.to_vec();
    tampered[50] ^= 1;
    assert_eq!(
        check(&good, &tampered, "secret-1", NOW).unwrap_err(),
        SigError::Mismatch(MISMATCH.into())
    );
    // A signed header changed after signing.
    let mut moved = signed("secret-1", NOW, body, "us-east-1");
    moved.headers.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonSQS.DeleteQueue"),
    );
    assert!(matches!(
        check(&moved, body, "secret-1", NOW),
        Err(SigError::Mismatch(_))
    ));
    assert_eq!(good.body, body);
}

#[test]
fn payload_hash_headers_must_be_the_bodys() {
    let body = b"Action=ListQueues";
    let mut good = signed("s", NOW, body, "us-east-1");
    good.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_str(&sha256_hex(body)).unwrap(),
    );
    // Not signed (not in SignedHeaders), but equal to the body's hash: accepted.
    assert!(check(&good, body, "s", NOW).is_ok());
    good.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    assert!(
        matches!(check(&good, body, "s", NOW), Err(SigError::Mismatch(m)) if m.contains("UNSIGNED-PAYLOAD"))
    );
    good.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_str(&sha256_hex(b"other")).unwrap(),
    );
    assert!(
        matches!(check(&good, body, "s", NOW), Err(SigError::Mismatch(m)) if m.contains("x-amz-content-sha256"))
    );
}

fn with_authorization(value: &str, date: Option<&str>) -> Result<Signature, SigError> {
    let mut map = headers(&[("host", "h"), ("authorization", value)]);
    if let Some(date) = date {
        map.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
    }
    parse(&Request {
        method: "POST",
        path: "/",
        query: None,
        authority: None,
        headers: &map,
        body: b"",
    })
}

#[test]
fn malformed_and_missing_signatures() {
    let none = HeaderMap::new();
    let bare = Request {
        method: "POST",
        path: "/",
        query: Some("Action=ListQueues"),
        authority: None,
        headers: &none,
        body: b"",
    };
    assert_eq!(parse(&bare), Err(SigError::Missing));
    let sig = "a".repeat(64);
    let full = format!(
        "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/sqs/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}"
    );
    assert!(with_authorization(&full, Some(AMZ_DATE)).is_ok());
    let incomplete = |value: &str, date: Option<&str>| match with_authorization(value, date) {
        Err(SigError::Incomplete(message)) => message,
        other => panic!("{value}: {other:?}"),
    };
    assert!(incomplete("Bearer bk_x", Some(AMZ_DATE)).contains("Unsupported AWS 'algorithm'"));
    let message = incomplete("AWS4-HMAC-SHA256 Signature=x", None);
    assert!(
        message.contains("requires 'Credential' parameter")
            && message.contains("requires 'SignedHeaders' parameter")
            && message.contains("'X-Amz-Date'")
            && !message.contains("requires 'Signature'"),
        "{message}"
    );
    assert!(incomplete(&full, Some("2015-08-30")).contains("ISO 8601"));
    assert!(incomplete(&full.replace("/sqs/", "/"), Some(AMZ_DATE)).contains("Credential is not"));
    assert!(incomplete(&full.replace("host;", ""), Some(AMZ_DATE)).contains("'Host'"));
    assert!(incomplete(&full.replace(&sig, "zz"), Some(AMZ_DATE)).contains("64 hexadecimal"));
}

#[test]
fn scopes_are_checked() {
    let body = b"Action=ListQueues";
    let good = signed("s", NOW, body, "us-east-1");
    let request = Request {
        method: "POST",
        path: "/",
        query: None,
        authority: None,
        headers: &good.headers,
        body,
    };
    let signature = parse(&request).unwrap();
    let wrong_service = Signature {
        service: "sns".into(),
        ..signature.clone()
    };
    assert!(
        matches!(verify(&request, &wrong_service, "s", NOW), Err(SigError::Mismatch(m)) if m.contains("correct service: 'sqs'"))
    );
    let wrong_date = Signature {
        scope_date: "20150831".into(),
        ..signature.clone()
    };
    assert!(
        matches!(verify(&request, &wrong_date, "s", NOW), Err(SigError::Mismatch(m)) if m.contains("'20150831' != '20150830'"))
    );
    let wrong_terminator = Signature {
        terminator: "aws5_request".into(),
        ..signature
    };
    assert!(matches!(
        verify(&request, &wrong_terminator, "s", NOW),
        Err(SigError::Mismatch(_))
    ));
}

#[test]
fn presigned_urls_verify_until_they_expire() {
    let map = headers(&[("host", "127.0.0.1:9324")]);
    let unsigned = Request {
        method: "GET",
        path: "/000000000000/orders",
        query: Some("Action=SendMessage&MessageBody=hello%20world"),
        authority: None,
        headers: &map,
        body: b"",
    };
    let query = presign(&unsigned, "BKIAEXAMPLE", "s", "ap-south-1", NOW, 60);
    let request = Request {
        query: Some(&query),
        ..unsigned
    };
    let signature = parse(&request).unwrap();
    assert_eq!(signature.expires_s, Some(60));
    assert!(verify(&request, &signature, "s", NOW + 60_000).is_ok());
    assert!(
        matches!(verify(&request, &signature, "s", NOW + 61_000), Err(SigError::Expired(m)) if m.starts_with("Request has expired"))
    );
    assert!(matches!(
        verify(&request, &signature, "other", NOW),
        Err(SigError::Mismatch(_))
    ));
    // The query is signed: another message body does not verify.
    let changed = query.replace("hello%20world", "hello%20there");
    let request = Request {
        query: Some(&changed),
        ..unsigned
    };
    assert!(matches!(
        verify(&request, &signature, "s", NOW),
        Err(SigError::Mismatch(_))
    ));
    // The host given by the URI when no Host header exists (HTTP/2).
    let none = HeaderMap::new();
    let h2 = Request {
        query: Some(&query),
        headers: &none,
        authority: Some("127.0.0.1:9324"),
        ..unsigned
    };
    assert!(verify(&h2, &parse(&h2).unwrap(), "s", NOW).is_ok());
    let partial = "Action=ListQueues&X-Amz-Algorithm=AWS4-HMAC-SHA256";
    let request = Request {
        query: Some(partial),
        ..unsigned
    };
    assert!(
        matches!(parse(&request), Err(SigError::Incomplete(m)) if m.contains("missing: X-Amz-Credential"))
    );
}
