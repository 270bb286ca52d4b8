//! Headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for the tests
//! that run the pages the gateway serves. Every wait is a bounded poll of the page.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest any single step may take: Chromium's start, one DevTools call, one page state.
pub const STEP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// Whether Chromium is here to run; in CI it must be (`.ci/run` installs it), elsewhere the
/// test says how to get it and passes.
pub fn chromium_available(what: &str) -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} is missing in CI"
    );
    eprintln!("skipped: apt-get install chromium to run {what} in a browser");
    false
}

/// The values of every `src="..."` and `href="..."` attribute of `html`.
pub fn links(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            found.push(part.split('"').next().unwrap_or_default().to_owned());
        }
    }
    found
}

/// Every `http://` or `https://` URL in `text` whose host is not `own_host` (host:port).
pub fn foreign_urls(text: &str, own_host: &str) -> Vec<String> {
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

/// Where screenshots go: under `target/tmp/`, for a person to look at.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir.join(name)
}

/// A headless Chromium with a fresh profile, killed when dropped.
pub struct Chromium {
    child: Child,
    /// The browser's DevTools WebSocket.
    pub endpoint: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch() -> Chromium {
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

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One DevTools connection, attached to one page (flattened session).
pub struct DevTools {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Events received so far (console messages, exceptions, log entries, network), for
    /// assertions and diagnostics.
    pub events: Vec<Value>,
}

impl DevTools {
    pub async fn connect(endpoint: &str) -> DevTools {
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
    pub async fn open_page(&mut self) {
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

    /// A new page with the page, runtime, log and network events on and Content-Security-
    /// Policy violations recorded in `window.cspViolations` from the first script on.
    pub async fn open_watched_page(&mut self) {
        self.open_page().await;
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(domain, json!({})).await;
        }
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": "window.cspViolations = []; document.addEventListener(\
                'securitypolicyviolation', e => window.cspViolations.push(e.blockedURI + ' ' + \
                e.violatedDirective));"}),
        )
        .await;
    }

    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({ "url": url })).await;
    }

    /// The viewport's size in CSS pixels; `mobile` also sets a phone's viewport behaviour.
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// The result of a DevTools call, or its error.
    pub async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
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
    pub async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|error| panic!("{expression}\nfailed: {error}"))
    }

    /// The value of a JavaScript expression, or what went wrong (it threw, or the page was
    /// between documents).
    pub async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
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
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        self.wait_within(STEP, what, expression).await
    }

    /// [`DevTools::wait_for`] with a bound of its own.
    pub async fn wait_within(&mut self, bound: Duration, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + bound;
        loop {
            let last = match self.try_eval(expression).await {
                Ok(value) if !value.is_null() && value != json!(false) => return value,
                Ok(value) => value,
                Err(error) => error,
            };
            if Instant::now() > deadline {
                let page = self
                    .eval("document.body ? document.body.innerText.slice(0, 3000) : ''")
                    .await;
                panic!(
                    "{what}: not within {bound:?} (last: {last})\npage text: {page}\n\
                     events: {:#?}",
                    self.problems()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Exceptions and errors (console, security) the page produced. A failed load is one,
    /// but not an answer with an error status, which the page asked for and handles.
    pub fn problems(&self) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| match e["method"].as_str().unwrap_or_default() {
                "Runtime.exceptionThrown" => true,
                "Log.entryAdded" => {
                    let entry = &e["params"]["entry"];
                    entry["level"] == "error"
                        && !(entry["source"] == "network"
                            && entry["text"]
                                .as_str()
                                .unwrap_or_default()
                                .contains("the server responded with a status of 4"))
                }
                "Runtime.consoleAPICalled" => e["params"]["type"] == "error",
                _ => false,
            })
            .collect()
    }

    /// Every URL the page asked for, WebSockets included, in order.
    pub fn requested(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|event| match event["method"].as_str() {
                Some("Network.requestWillBeSent") => event["params"]["request"]["url"].as_str(),
                Some("Network.webSocketCreated") => event["params"]["url"].as_str(),
                _ => None,
            })
            .map(str::to_owned)
            .collect()
    }

    /// The bodies of the page's requests to `url` (e.g. GraphQL operations), in order.
    pub fn posted_to(&self, url: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| {
                e["method"] == "Network.requestWillBeSent" && e["params"]["request"]["url"] == url
            })
            .filter_map(|e| e["params"]["request"]["postData"].as_str())
            .map(str::to_owned)
            .collect()
    }

    /// The messages the page sent over its WebSockets, in order.
    pub fn websocket_sent(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.webSocketFrameSent")
            .filter_map(|e| e["params"]["response"]["payloadData"].as_str())
            .filter_map(|text| serde_json::from_str(text).ok())
            .collect()
    }

    /// How many nodes of the accessibility tree have this role and accessible name: what a
    /// screen reader would find.
    pub async fn accessible(&mut self, role: &str, name: &str) -> usize {
        let document = self.call("DOM.getDocument", json!({"depth": 0})).await;
        let found = self
            .call(
                "Accessibility.queryAXTree",
                json!({"backendNodeId": document["root"]["backendNodeId"], "role": role, "accessibleName": name}),
            )
            .await;
        found["nodes"]
            .as_array()
            .map(|nodes| {
                nodes
                    .iter()
                    .filter(|node| node["ignored"] != json!(true))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Clicks the middle of the element `selector` names with the mouse, as a person would
    /// (a hidden or covered element does not get the click).
    pub async fn click(&mut self, selector: &str) {
        let at = self
            .wait_for(
                &format!("{selector} to be clickable"),
                &format!(
                    "(() => {{ const e = document.querySelector({selector:?}); \
                     if (!e || e.disabled || !e.checkVisibility()) return null; \
                     e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                     return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
                ),
            )
            .await;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": at[0], "y": at[1], "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Focuses the field `selector` names and types `text` over what it holds.
    pub async fn fill(&mut self, selector: &str, text: &str) {
        self.wait_for(
            &format!("{selector} to take input"),
            &format!(
                "(() => {{ const e = document.querySelector({selector:?}); \
                 if (!e || !e.checkVisibility()) return false; e.focus(); e.select(); \
                 return document.activeElement === e; }})()"
            ),
        )
        .await;
        self.call("Input.insertText", json!({ "text": text })).await;
        self.wait_for(
            &format!("{selector} to hold what was typed"),
            &format!("document.querySelector({selector:?}).value === {text:?}"),
        )
        .await;
    }

    /// Waits for the answer to the page's request to `url`; its status.
    pub async fn wait_answered(&mut self, url: &str) -> u64 {
        let deadline = Instant::now() + STEP;
        loop {
            let answered = self.events.iter().find_map(|e| {
                (e["method"] == "Network.responseReceived" && e["params"]["response"]["url"] == url)
                    .then(|| e["params"]["response"]["status"].as_u64())
                    .flatten()
            });
            if let Some(status) = answered {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no answer from {url} within {STEP:?}"
            );
            // Any call brings in the events that came meanwhile.
            tokio::time::sleep(POLL).await;
            self.eval("0").await;
        }
    }

    /// Presses a key (`Enter`, `Tab`, `Escape`, ...) on whatever has the focus.
    pub async fn press(&mut self, key: &str) {
        let (code, text) = match key {
            "Enter" => (13, "\r"),
            "Tab" => (9, ""),
            "Escape" => (27, ""),
            " " => (32, " "),
            other => panic!("no key code for {other}"),
        };
        let code_name = if key == " " { "Space" } else { key };
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyDown", "key": key, "code": code_name,
                   "windowsVirtualKeyCode": code, "text": text}),
        )
        .await;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "code": code_name, "windowsVirtualKeyCode": code}),
        )
        .await;
    }

    pub async fn screenshot(&mut self, path: &Path) {
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
