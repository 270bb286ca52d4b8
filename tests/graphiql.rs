//! GraphiQL is served from the binary: the page, every script and style it loads, and nothing
//! from another host. Then, in headless Chromium (Debian's `chromium`, driven over the
//! DevTools protocol), a query with a token runs and its result renders, and a subscription
//! over `/graphql/ws` delivers a live event. Every wait is a bounded poll of the page.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The values of every `src="..."` and `href="..."` attribute of `html`.
fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            found.push(part.split('"').next().unwrap_or_default().to_owned());
        }
    }
    found
}

/// Every `http://` or `https://` URL in `text` whose host is not `own_host` (host:port).
fn foreign_urls(text: &str, own_host: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        for part in text.split(scheme).skip(1) {
            let end = part
                .find(|c: char| c.is_whitespace() || "\"'<>)`".contains(c))
                .unwrap_or(part.len());
            let url = &part[..end];
            let host = url.split('/').next().unwrap_or_default();
            if host != own_host {
                found.push(format!("{scheme}{url}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn graphiql_page_and_its_assets_are_served_from_the_binary() {
    let app = TestApp::start().await;
    let own_host = app.addr.to_string();

    let response = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(html.contains("data-endpoint=\"/graphql\""), "{html}");
    assert!(
        html.contains("data-subscription-endpoint=\"/graphql/ws\""),
        "{html}"
    );
    assert_eq!(foreign_urls(&html, &own_host), Vec::<String>::new());

    let links: Vec<String> = links(&html)
        .into_iter()
        .filter(|link| link != "data:,") // the empty icon, so no favicon.ico is asked for
        .collect();
    assert_eq!(links.len(), 5, "{links:?}");
    for link in &links {
        assert!(
            link.starts_with("/graphql/assets/"),
            "{link} is not served here"
        );
        let response = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{link}");
        let headers = response.headers().clone();
        let content_type = headers["content-type"].to_str().unwrap();
        let expected = if link.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(content_type.starts_with(expected), "{link}: {content_type}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{link}");
        let cache = headers["cache-control"].to_str().unwrap();
        if link.ends_with("/callrec-graphiql.js") {
            // The page's own script changes under the same name.
            assert_eq!(cache, "no-cache", "{link}");
        } else {
            assert!(cache.contains("max-age=31536000"), "{link}: {cache}");
            assert!(cache.contains("immutable"), "{link}: {cache}");
        }
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 100, "{link} is nearly empty");
        let text = String::from_utf8_lossy(&body);
        if link.ends_with(".css") {
            // Fonts and icons are inlined; a stylesheet loads nothing else.
            assert!(!text.contains("@import"), "{link} imports");
            assert!(!text.contains("url(http"), "{link} loads from elsewhere");
            assert!(!text.contains("url(//"), "{link} loads from elsewhere");
        }
        if link.ends_with("/callrec-graphiql.js") {
            assert_eq!(foreign_urls(&text, &own_host), Vec::<String>::new());
        }
    }

    // The licences travel with the code.
    for licence in ["graphiql", "react", "react-dom"] {
        let path = format!("/graphql/assets/LICENSE-{licence}.txt");
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.text().await.unwrap().contains("MIT License"));
    }

    for missing in ["/graphql/assets/nope.js", "/graphql/assets/..%2FCargo.toml"] {
        let response = app.client.get(app.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    app.stop().await;
}

const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single step may take: Chromium's start, one DevTools call, one page state.
const STEP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// A headless Chromium with a fresh profile, killed when dropped.
struct Chromium {
    child: Child,
    /// The browser's DevTools WebSocket.
    endpoint: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn launch() -> Chromium {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--window-size=1400,900",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut before = Vec::new();
        let endpoint = tokio::time::timeout(STEP, async {
            while let Some(line) = lines.next_line().await.expect("chromium's stderr") {
                if let Some(at) = line.find("DevTools listening on ") {
                    return line[at + "DevTools listening on ".len()..]
                        .trim()
                        .to_owned();
                }
                before.push(line);
            }
            panic!(
                "chromium exited before DevTools listened:\n{}",
                before.join("\n")
            );
        })
        .await
        .unwrap_or_else(|_| panic!("no DevTools line within {STEP:?}:\n{}", before.join("\n")));
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Chromium {
            child,
            endpoint,
            _profile: profile,
        }
    }

    async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One DevTools connection, attached to one page (flattened session).
struct DevTools {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Events received so far (console messages, exceptions, log entries), for diagnostics.
    events: Vec<Value>,
}

impl DevTools {
    async fn connect(endpoint: &str) -> DevTools {
        let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(endpoint))
            .await
            .expect("DevTools connects in time")
            .expect("DevTools connects");
        DevTools {
            ws,
            next_id: 0,
            session: None,
            events: Vec::new(),
        }
    }

    /// A new page, which every later call goes to.
    async fn open_page(&mut self) {
        let target = self
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        self.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_owned(),
        );
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// The result of a DevTools call, or its error.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .expect("DevTools send");
        let events = &mut self.events;
        let ws = &mut self.ws;
        let answer = tokio::time::timeout(STEP, async {
            loop {
                let message = ws
                    .next()
                    .await
                    .expect("DevTools open")
                    .expect("DevTools read");
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
                if value["id"] == json!(id) {
                    return value;
                }
                if value.get("method").is_some() {
                    events.push(value);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method} did not answer within {STEP:?}"));
        match answer.get("error") {
            Some(error) => Err(error.clone()),
            None => Ok(answer["result"].clone()),
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|error| panic!("{expression}\nfailed: {error}"))
    }

    /// The value of a JavaScript expression, or what went wrong (it threw, or the page was
    /// between documents).
    async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self
            .try_call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        match result.get("exceptionDetails") {
            Some(exception) => Err(exception.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Polls `expression` until it is neither null nor false, for at most [`STEP`]; an
    /// evaluation that fails counts as not yet.
    async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            let last = match self.try_eval(expression).await {
                Ok(value) if !value.is_null() && value != json!(false) => return value,
                Ok(value) => value,
                Err(error) => error,
            };
            if Instant::now() > deadline {
                let page = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await;
                panic!(
                    "{what}: not within {STEP:?} (last: {last})\npage text: {page}\n\
                     events: {:#?}",
                    self.problems()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Exceptions and errors (console, network, security) the page produced.
    fn problems(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| match e["method"].as_str().unwrap_or_default() {
                "Runtime.exceptionThrown" => true,
                "Log.entryAdded" => e["params"]["entry"]["level"] == "error",
                "Runtime.consoleAPICalled" => e["params"]["type"] == "error",
                _ => false,
            })
            .collect()
    }

    async fn screenshot(&mut self, path: &Path) {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        std::fs::write(path, png).expect("screenshot written");
        println!("screenshot: {}", path.display());
    }
}

/// The text of the GraphiQL editor (a CodeMirror 5 instance) under `selector`.
fn editor_value(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({selector:?}); \
         return e && e.CodeMirror ? e.CodeMirror.getValue() : null; }})()"
    )
}

/// Where screenshots go: under `target/`, for a person to look at.
fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Puts `operation` in GraphiQL's query editor and runs it with the Execute button.
async fn run_in_graphiql(page: &mut DevTools, operation: &str) {
    let operation = json!(operation);
    page.eval(&format!(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror\
         .setValue({operation})"
    ))
    .await;
    // GraphiQL parses the editor's text (which tells a subscription, for the WebSocket, from a
    // query) in a debounced handler that ends by storing the text; run only after that.
    page.wait_for(
        "GraphiQL to take in the operation",
        &format!("localStorage.getItem('graphiql:query') === {operation}"),
    )
    .await;
    page.eval("document.querySelector('button.graphiql-execute-button').click()")
        .await;
}

const RESPONSE: &str = ".graphiql-response .CodeMirror";
const QUERY: &str = "{ callRecordingPlatforms { systemDefault } }";
const EVENTS: &str = "subscription { callRecordingEvents { __typename
  ... on CallRecordingSubscriptionStarted { live }
  ... on CallRecordingPlatformAdded { platform { name } } } }";

#[tokio::test]
async fn graphiql_runs_a_query_and_a_subscription_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        // .ci/run installs Chromium; elsewhere say how to get it.
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHROMIUM} is missing in CI"
        );
        eprintln!("skipped: apt-get install chromium to run GraphiQL in a browser");
        return;
    }
    let started = Instant::now();
    let app = TestApp::start().await;
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Browser Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let chromium = Chromium::launch().await;
    let mut page = DevTools::connect(&chromium.endpoint).await;
    page.open_page().await;
    for domain in [
        "Page.enable",
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
    ] {
        page.call(domain, json!({})).await;
    }
    // Content-Security-Policy violations, recorded from the first script on.
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "window.cspViolations = []; document.addEventListener(\
            'securitypolicyviolation', e => window.cspViolations.push(e.blockedURI + ' ' + \
            e.violatedDirective));"}),
    )
    .await;
    page.call("Page.navigate", json!({"url": app.url("/graphql")}))
        .await;

    // GraphiQL has rendered, with the Headers tab open on the placeholder header.
    page.wait_for(
        "GraphiQL's editors",
        "!!document.querySelector('.graphiql-query-editor .CodeMirror') && \
         !!document.querySelector('button.graphiql-execute-button')",
    )
    .await;
    page.screenshot(&screenshot_path("graphiql-start.png"))
        .await;
    let headers = json!({"Authorization": format!("Bearer {}", app.token)});
    let headers = serde_json::to_string_pretty(&headers).unwrap();
    let set_headers = format!(
        "(() => {{ const editor = [...document.querySelectorAll('.graphiql-editor-tool .CodeMirror')]\
         .map(e => e.CodeMirror).find(cm => cm.getValue().includes('Bearer <access_token>')); \
         if (!editor) return false; editor.setValue({headers}); return true; }})()",
        headers = json!(headers)
    );
    page.wait_for("the headers editor with its placeholder", &set_headers)
        .await;

    // Introspection needs the token: once the headers editor holds it (its changes reach
    // GraphiQL after a short delay), "Re-fetch GraphQL schema" loads the schema and the
    // documentation explorer shows its root types.
    page.wait_for(
        "the schema re-fetched with the token",
        "(() => { const d = document.querySelector('.graphiql-doc-explorer'); \
         if (d && d.innerText.includes('Subscription')) return true; \
         const docs = document.querySelector('[aria-label=\"Show Documentation Explorer\"]'); \
         if (docs) docs.click(); \
         const refetch = document.querySelector('[aria-label=\"Re-fetch GraphQL schema\"]'); \
         if (refetch) refetch.click(); return false; })()",
    )
    .await;

    // A query over POST /graphql, with the token from the headers editor.
    run_in_graphiql(&mut page, QUERY).await;
    let shown = page
        .wait_for(
            "the query's result",
            &format!(
                "(() => {{ const v = {}; return v && v.includes('systemDefault') ? v : null; }})()",
                editor_value(RESPONSE)
            ),
        )
        .await;
    let result: Value = serde_json::from_str(shown.as_str().unwrap()).expect("result is JSON");
    assert_eq!(
        result,
        json!({"data": {"callRecordingPlatforms": {"systemDefault": "Browser Platform"}}}),
        "{result}"
    );
    // Rendered, not only held by the editor: the text is on screen.
    let visible = page
        .eval("document.querySelector('.graphiql-response').innerText")
        .await;
    assert!(
        visible
            .as_str()
            .unwrap_or_default()
            .contains("Browser Platform"),
        "{visible}"
    );
    page.screenshot(&screenshot_path("graphiql-query.png"))
        .await;

    // A subscription over the WebSocket /graphql/ws, authenticated by the same headers.
    run_in_graphiql(&mut page, EVENTS).await;
    page.wait_for(
        "the subscription to start",
        &format!(
            "(() => {{ const v = {}; return !!v && v.includes('\"live\": true'); }})()",
            editor_value(RESPONSE)
        ),
    )
    .await;
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Live Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let shown = page
        .wait_for(
            "the live event",
            &format!(
                "(() => {{ const v = {}; return v && v.includes('Live Platform') ? v : null; }})()",
                editor_value(RESPONSE)
            ),
        )
        .await;
    let event: Value = serde_json::from_str(shown.as_str().unwrap()).expect("event is JSON");
    assert_eq!(
        event,
        json!({"data": {"callRecordingEvents": {
            "__typename": "CallRecordingPlatformAdded",
            "platform": {"name": "Live Platform"}
        }}}),
        "{event}"
    );
    page.screenshot(&screenshot_path("graphiql-subscription.png"))
        .await;

    // Nothing went wrong on the way: no exception, no console error, no refused load.
    let problems = page.problems();
    assert!(problems.is_empty(), "{problems:#?}");
    let violations = page.eval("window.cspViolations").await;
    assert_eq!(violations, json!([]), "Content-Security-Policy violations");
    // Everything came from the gateway, and the subscription used its WebSocket.
    let own = [app.url("/"), format!("ws://{}/", app.addr)];
    let mut requested = Vec::new();
    for event in &page.events {
        let url = match event["method"].as_str() {
            Some("Network.requestWillBeSent") => &event["params"]["request"]["url"],
            Some("Network.webSocketCreated") => &event["params"]["url"],
            _ => continue,
        };
        let url = url.as_str().unwrap_or_default().to_owned();
        assert!(
            own.iter().any(|prefix| url.starts_with(prefix)) || url.starts_with("data:"),
            "the page asked another host: {url}"
        );
        requested.push(url);
    }
    let websocket = format!("ws://{}/graphql/ws", app.addr);
    assert!(requested.contains(&websocket), "{requested:#?}");
    chromium.kill().await;
    println!("browser test took {:.1} s", started.elapsed().as_secs_f64());
    app.stop().await;
}
