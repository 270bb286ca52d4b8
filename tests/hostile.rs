//! Hostile input over HTTP: seeded, generated requests against every route, written byte by
//! byte on a socket so that nothing normalises them first — random JSON, wrong types, huge
//! numbers, deep nesting, unicode and control characters, overlong names, percent-encoding
//! tricks (`%2F`, `%00`, `%ZZ`, `..`), missing and extra path segments, wrong methods, wrong or
//! missing content types, huge headers and bodies.
//!
//! The server must never answer 5xx nor drop the connection, must keep answering, every
//! non-2xx must carry the documented error body, and a refused request must leave the store
//! exactly as it was. `CALLREC_HOSTILE_SEED` replays a run, `CALLREC_HOSTILE_REQUESTS` sets
//! how many requests are tried.

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, encode, platform, store_snapshot};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CR: &str = "/api/v1/system/services/call_recording";

struct Raw {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size = std::str::from_utf8(&data[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}

/// One request on a fresh connection; `Err` when the server dropped it without an answer.
async fn send(addr: std::net::SocketAddr, request: &[u8]) -> Result<Raw, String> {
    let io = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.write_all(request).await.map_err(|e| e.to_string())?;
        let mut data = Vec::new();
        // The server may answer (e.g. 413) before reading all of a large body; read what came.
        let _ = stream.read_to_end(&mut data).await;
        Ok::<_, String>(data)
    };
    let data = tokio::time::timeout(Duration::from_secs(20), io)
        .await
        .map_err(|_| "no answer within 20 s".to_owned())??;
    let head_end = find(&data, b"\r\n\r\n").ok_or_else(|| {
        format!(
            "no complete answer ({} bytes): {:?}",
            data.len(),
            String::from_utf8_lossy(&data)
        )
    })?;
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let mut body = data[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Ok(Raw {
        status,
        headers: head,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// The generator.

const PLATFORM: &str = "Call Rec Platform 1";

fn nasty_segment(rng: &mut StdRng) -> String {
    let long = "n".repeat(rng.gen_range(81..3000));
    let options: Vec<String> = vec![
        encode(PLATFORM),
        "T1".into(),
        "G1".into(),
        "admin".into(),
        "%2F".into(),
        "a%2Fb".into(),
        "%00".into(),
        "a%00b".into(),
        "%ZZ".into(),
        "%".into(),
        "%%".into(),
        "%C3%28".into(),
        "%FF%FE".into(),
        "..".into(),
        ".".into(),
        "%2E%2E".into(),
        "..%2F..%2Fetc".into(),
        long,
        encode("Ωmega 🎙️"),
        encode(" lead"),
        encode("tab\there"),
        encode("\u{202E}rtl"),
        "%7F".into(),
        "a;b=c".into(),
        "a?b".into(),
        "%20".into(),
        "~".into(),
        "%u0041".into(),
    ];
    options.choose(rng).expect("options").clone()
}

/// A target and the methods its route answers.
fn path(rng: &mut StdRng) -> (String, &'static [&'static str]) {
    const LIST_ADD: &[&str] = &["GET", "POST"];
    const ONE: &[&str] = &["GET", "PUT", "DELETE"];
    const GET_PUT: &[&str] = &["GET", "PUT"];
    const GET_DELETE: &[&str] = &["GET", "DELETE"];
    const GET: &[&str] = &["GET"];
    const POST: &[&str] = &["POST"];
    const DELETE: &[&str] = &["DELETE"];
    let seg = |rng: &mut StdRng| nasty_segment(rng);
    let (mut p, methods) = match rng.gen_range(0..22) {
        0 => (format!("{CR}/platforms/"), LIST_ADD),
        1 | 2 => (format!("{CR}/platforms/{}/", seg(rng)), ONE),
        3 => (format!("{CR}/platforms/{}/usage/", seg(rng)), GET),
        4 => (format!("{CR}/properties/"), GET_PUT),
        5 => ("/api/v1/tenants/".into(), LIST_ADD),
        6 => (format!("/api/v1/tenants/{}/", seg(rng)), GET_DELETE),
        7 => (format!("/api/v1/tenants/{}/groups/", seg(rng)), LIST_ADD),
        8 => (
            format!("/api/v1/tenants/{}/groups/{}/", seg(rng), seg(rng)),
            GET_DELETE,
        ),
        9 | 10 => (
            format!(
                "/api/v1/tenants/{}/groups/{}/services/call_recording/",
                seg(rng),
                seg(rng)
            ),
            GET_PUT,
        ),
        11 => ("/api/v1/login/".into(), POST),
        12 => ("/api/v1/auth/access_token/".into(), GET),
        13 => ("/api/v1/logout/".into(), POST),
        14 => ("/api/v1/local/users/".into(), LIST_ADD),
        15 => (format!("/api/v1/local/users/{}/", seg(rng)), DELETE),
        16 => ("/api/v1/openapi.json".into(), GET),
        17 => (
            ["/healthz", "/readyz", "/metrics"]
                .choose(rng)
                .expect("ops")
                .to_string(),
            GET,
        ),
        // Extra and missing segments, doubled slashes, traversal.
        18 => (format!("{CR}/platforms/{}/{}/x/", seg(rng), seg(rng)), ONE),
        19 => (
            format!("/api/v1/tenants//groups/{}/services/", seg(rng)),
            GET_PUT,
        ),
        20 => (format!("{CR}/../../{}", seg(rng)), GET),
        _ => (format!("/{}", seg(rng)), GET),
    };
    if rng.gen_bool(0.2) && p.ends_with('/') {
        p.pop();
    }
    if rng.gen_bool(0.1) {
        p.push_str(&format!("?q={}&%ZZ=1", seg(rng)));
    }
    (p, methods)
}

fn random_string(rng: &mut StdRng) -> String {
    match rng.gen_range(0..8) {
        0 => String::new(),
        1 => "x".repeat(rng.gen_range(79..200)),
        2 => "\u{0}\u{7}\u{1b}[31m\r\n".into(),
        3 => "Ωmega 🎙️ \u{202E}".into(),
        4 => " padded ".into(),
        5 => "10.0.32.55".into(),
        6 => PLATFORM.into(),
        _ => (0..rng.gen_range(1..20))
            .map(|_| char::from_u32(rng.gen_range(0..0x11000)).unwrap_or('?'))
            .collect(),
    }
}

fn random_json(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => json!(rng.r#gen::<i64>()),
        3 => json!(rng.r#gen::<f64>() * 1e300),
        4 => json!(random_string(rng)),
        5 => [
            json!(0),
            json!(-1),
            json!(65535),
            json!(65536),
            json!(u64::MAX),
            json!(i64::MIN),
        ][rng.gen_range(0..6)]
        .clone(),
        6 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut o = serde_json::Map::new();
            for _ in 0..rng.gen_range(0..4) {
                let key = [
                    "name",
                    "netAddress",
                    "port",
                    "default",
                    "tenantId",
                    "groupId",
                    "username",
                    "password",
                    "userLevel",
                    "refresh_token",
                    "maxResponseWaitTimeMilliseconds",
                    "colour",
                ]
                .choose(rng)
                .expect("keys")
                .to_string();
                o.insert(key, random_json(rng, depth + 1));
            }
            Value::Object(o)
        }
    }
}

/// A well-formed body for some route with one field spoiled.
fn spoiled(rng: &mut StdRng) -> Value {
    let mut base = match rng.gen_range(0..5) {
        0 => platform("Hostile"),
        1 => json!({"port": 5060, "default": true, "description": ""}),
        2 => json!({"maxResponseWaitTimeMilliseconds": 5000, "refreshPeriodSeconds": 60}),
        3 => json!({"tenantId": "T9"}),
        _ => json!({"name": PLATFORM}),
    };
    let keys: Vec<String> = base
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(key) = keys.choose(rng) {
        base[key.as_str()] = match rng.gen_range(0..9) {
            0 => json!(f64::MAX),
            1 => serde_json::from_str("123456789012345678901234567890").unwrap_or(Value::Null),
            2 => json!(-1),
            3 => json!({"nested": [1, 2]}),
            4 => json!([PLATFORM]),
            5 => json!("true"),
            6 => json!(random_string(rng)),
            7 => json!(1.5),
            _ => Value::Null,
        };
    }
    if rng.gen_bool(0.2) {
        base["unknownField"] = json!(1);
    }
    base
}

fn body(rng: &mut StdRng) -> Option<Vec<u8>> {
    Some(match rng.gen_range(0..12) {
        0 => return None,
        1 => Vec::new(),
        2 | 3 => serde_json::to_vec(&random_json(rng, 0)).expect("json"),
        4..=6 => serde_json::to_vec(&spoiled(rng)).expect("json"),
        7 => {
            let n = rng.gen_range(100..20_000);
            format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()
        }
        8 => {
            let n = rng.gen_range(100..5_000);
            format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n)).into_bytes()
        }
        9 => [&b"{\"name\": \""[..], &[0xff, 0xfe, 0xc3, 0x28], b"\"}"].concat(),
        10 => vec![b' '; rng.gen_range(65_000..70_000)],
        _ => [
            &b"{\"name\": 1"[..],
            b"{,}",
            b"null",
            b"[]",
            b"\"str\"",
            b"{\"name\":\"a\"}{\"name\":\"b\"}",
            b"\xef\xbb\xbf{}",
            b"{\"port\": 1e400}",
            b"{\"port\": -0}",
            b"{\"name\": \"\\ud800\"}",
        ]
        .choose(rng)
        .expect("bodies")
        .to_vec(),
    })
}

/// A generated request: what it is, its bytes, and whether it is valid HTTP/1.1 framing.
/// Requests that are not (a TRACE with content, a control character in a header value, more
/// headers than the server reads) are refused by the HTTP layer before any route sees them,
/// with a bare 400 or 431.
struct Generated {
    what: String,
    bytes: Vec<u8>,
    framing_ok: bool,
}

fn request(rng: &mut StdRng, token: &str) -> Generated {
    let mut framing_ok = true;
    let (target, methods) = path(rng);
    let method = if rng.gen_bool(0.75) {
        *methods.choose(rng).expect("methods")
    } else {
        *[
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO",
        ]
        .choose(rng)
        .expect("methods")
    };
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    match rng.gen_range(0..10) {
        0 => {}
        1 => head.push_str("Authorization: Bearer not.a.token\r\n"),
        2 => head.push_str(&format!("Authorization: Basic {token}\r\n")),
        3 => head.push_str(&format!("Authorization: Bearer {token}x\r\n")),
        _ => head.push_str(&format!("Authorization: Bearer {token}\r\n")),
    }
    match rng.gen_range(0..6) {
        0 => {}
        1 => head.push_str("Content-Type: text/plain\r\n"),
        2 => head.push_str("Content-Type: multipart/form-data; boundary=x\r\n"),
        3 => head.push_str("Content-Type: application/json; charset=latin1\r\n"),
        _ => head.push_str("Content-Type: application/json\r\n"),
    }
    if rng.gen_bool(0.05) {
        head.push_str(&format!(
            "X-Big: {}\r\n",
            "h".repeat(rng.gen_range(8_000..60_000))
        ));
    }
    if rng.gen_bool(0.03) {
        let n = rng.gen_range(50..150);
        framing_ok &= n < 80;
        for i in 0..n {
            head.push_str(&format!("X-Many-{i}: v\r\n"));
        }
    }
    if rng.gen_bool(0.05) {
        head.push_str("X-Request-Id: \u{1}bad\r\n");
        framing_ok = false;
    }
    let body = body(rng);
    framing_ok &= !(method == "TRACE" && body.is_some());
    let mut bytes = head.into_bytes();
    if let Some(b) = &body {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", b.len()).as_bytes());
        bytes.extend_from_slice(b);
    } else {
        bytes.extend_from_slice(b"\r\n");
    }
    Generated {
        what: format!("{method} {target}"),
        bytes,
        framing_ok,
    }
}

fn is_error_body(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(errors) = v["errors"].as_array() else {
        return false;
    };
    !errors.is_empty()
        && errors.iter().all(|e| {
            e["code"].is_u64()
                && e["name"].is_string()
                && e["message"].is_string()
                && e["details"].is_object()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_documented_refusals_and_change_nothing() {
    let seed = common::seed_from_env("CALLREC_HOSTILE_SEED");
    let count: usize = common::from_env("CALLREC_HOSTILE_REQUESTS", 6000);
    eprintln!("hostile: seed {seed}, {count} requests (CALLREC_HOSTILE_SEED={seed} replays)");
    let mut rng = StdRng::seed_from_u64(seed);
    let app = TestApp::start().await;
    // Something for the requests to hit.
    for (path, body) in [
        (format!("{CR}/platforms/"), platform(PLATFORM)),
        ("/api/v1/tenants/".into(), json!({"tenantId": "T1"})),
        (
            "/api/v1/tenants/T1/groups/".into(),
            json!({"groupId": "G1"}),
        ),
        (
            "/api/v1/tenants/T1/groups/G1/services/call_recording/".into(),
            json!({"name": PLATFORM}),
        ),
    ] {
        let (status, answer) = app.admin(Method::POST, &path, Some(body.clone())).await;
        if status != 200 {
            let (status, answer) = app.admin(Method::PUT, &path, Some(body)).await;
            assert_eq!(status, 200, "{path}: {answer}");
        } else {
            assert_eq!(status, 200, "{path}: {answer}");
        }
    }

    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut before = store_snapshot(&app.service);
    let mut framing_refused = 0;
    for i in 0..count {
        let Generated {
            what,
            bytes,
            framing_ok,
        } = request(&mut rng, &app.token);
        let ctx = format!("request {i} ({what}), seed {seed}");
        let answer = send(app.addr, &bytes)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        *statuses.entry(answer.status).or_default() += 1;
        assert!(
            answer.status < 500,
            "{ctx}: {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
        let head = what.starts_with("HEAD ");
        let bare_refusal =
            !framing_ok && [400, 431].contains(&answer.status) && answer.body.is_empty();
        if !framing_ok {
            framing_refused += 1;
        }
        if !(200..300).contains(&answer.status) && !head && !bare_refusal {
            assert!(
                is_error_body(&answer.body),
                "{ctx}: {} without the error body:\n{}\n{}",
                answer.status,
                answer.headers,
                String::from_utf8_lossy(&answer.body)
            );
        }
        let after = store_snapshot(&app.service);
        if !(200..300).contains(&answer.status) {
            assert_eq!(before, after, "{ctx}: a refused request changed the store");
        }
        before = after;
    }
    // Still answering, and answering correctly.
    let (status, body) = app.get(&format!("{CR}/platforms/")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(app.call(Method::GET, "/healthz", None, None).await.0, 200);
    eprintln!(
        "hostile: {count} requests in {:.1} s ({framing_refused} not valid HTTP/1.1), none 5xx, statuses {statuses:?}",
        started.elapsed().as_secs_f64()
    );
}
