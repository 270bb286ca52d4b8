//! The operator dashboard at `/dashboard/`: served from the binary under a strict
//! Content-Security-Policy, and used in headless Chromium (Debian's `chromium`, driven over
//! the DevTools protocol) as an operator would: sign in, add a platform through the form,
//! make it the default, edit it, see refused values and deletes explained next to what was
//! refused, see changes made elsewhere without reloading, and, as a Group Admin, see no
//! controls that level cannot use. Every request the page makes stays on 127.0.0.1.
//! Screenshots of each state go to `target/tmp/dashboard-*.png`.

mod common;

use std::time::{Duration, Instant};

use common::browser::*;
use common::sip::{Responder, dead_port};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// How soon a change made elsewhere must show on the page.
const LIVE: Duration = Duration::from_secs(1);

#[tokio::test]
async fn the_dashboard_is_served_from_the_binary_under_a_strict_policy() {
    let app = TestApp::start().await;
    let own_host = app.addr.to_string();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/dashboard"] {
        let response = no_redirects.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT, "{path}");
        assert_eq!(response.headers()["location"], "/dashboard/", "{path}");
    }

    let response = app.client.get(app.url("/dashboard/")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(csp.contains(directive), "{directive} is missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = response.text().await.unwrap();
    assert_eq!(foreign_urls(&html, &own_host), Vec::<String>::new());

    let mut links: Vec<String> = links(&html)
        .into_iter()
        .filter(|link| link != "data:,")
        .collect();
    links.sort();
    assert_eq!(
        links,
        ["/dashboard/dashboard.css", "/dashboard/dashboard.js"],
        "{links:?}"
    );
    for link in &links {
        let response = app.client.get(app.url(link)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{link}");
        let headers = response.headers().clone();
        let expected = if link.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(content_type.starts_with(expected), "{link}: {content_type}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{link}");
        assert_eq!(headers["cache-control"], "no-cache", "{link}");
        let text = response.text().await.unwrap();
        assert!(text.len() > 1000, "{link} is nearly empty");
        assert_eq!(foreign_urls(&text, &own_host), Vec::<String>::new());
        assert!(!text.contains("@import"), "{link} imports");
        assert!(!text.contains("url("), "{link} loads from elsewhere");
        // Tokens stay in memory.
        assert!(!text.contains("localStorage"), "{link} uses localStorage");
    }
    for missing in ["/dashboard/nope.js", "/dashboard/..%2FCargo.toml"] {
        let response = app.client.get(app.url(missing)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    app.stop().await;
}

/// A browser page on the dashboard, with what is needed to drive it.
struct Dashboard {
    chromium: Chromium,
    page: DevTools,
    started: Instant,
}

impl Dashboard {
    /// Chromium on `path` of `app` at 1280×800, or None when there is no Chromium here.
    async fn open(app: &TestApp, path: &str) -> Option<Dashboard> {
        if !chromium_available("the dashboard") {
            return None;
        }
        let started = Instant::now();
        let chromium = Chromium::launch().await;
        let mut page = DevTools::connect(&chromium.endpoint).await;
        page.open_watched_page().await;
        page.viewport(1280, 800, false).await;
        page.navigate(&app.url(path)).await;
        // The page's script focuses the username last, once its handlers are on; until the new
        // document has elements both sides are null, so the field must exist first.
        page.wait_for(
            "the sign-in form, ready",
            "!!document.getElementById('username') && \
             document.activeElement === document.getElementById('username')",
        )
        .await;
        Some(Dashboard {
            chromium,
            page,
            started,
        })
    }

    /// Types the credentials and submits with the Enter key.
    async fn sign_in(&mut self, username: &str, password: &str) {
        self.page.fill("#username", username).await;
        self.page.fill("#password", password).await;
        self.page.press("Enter").await;
    }

    async fn text(&mut self, selector: &str) -> String {
        let value = self
            .page
            .eval(&format!(
                "document.querySelector({selector:?})?.innerText ?? ''"
            ))
            .await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Waits for the platform row `name` to hold every one of `texts`.
    async fn wait_row(&mut self, name: &str, texts: &[&str]) {
        self.wait_row_within(STEP, name, texts).await;
    }

    async fn wait_row_within(&mut self, bound: Duration, name: &str, texts: &[&str]) {
        let expression = format!(
            "(() => {{ const row = document.querySelector('tr[data-platform=\"' + CSS.escape({name:?}) + '\"]'); \
             if (!row) return false; const cells = [...row.cells].map(c => c.textContent.trim().replace(/\\s+/g, ' ')); \
             return {texts}.every(t => cells.includes(t)) ? cells : false; }})()",
            texts = json!(texts)
        );
        self.page
            .wait_within(bound, &format!("row {name} with {texts:?}"), &expression)
            .await;
    }

    async fn wait_no_row(&mut self, bound: Duration, name: &str) {
        self.page
            .wait_within(
                bound,
                &format!("row {name} to go"),
                &format!(
                    "!!document.querySelector('#platforms tbody tr') && \
                     !document.querySelector('tr[data-platform=\"' + CSS.escape({name:?}) + '\"]')"
                ),
            )
            .await;
    }

    /// The accessible name of each visible button, in page order.
    async fn buttons(&mut self) -> Vec<String> {
        let names = self
            .page
            .eval(
                "[...document.querySelectorAll('button')].filter(b => b.checkVisibility())\
                 .map(b => b.textContent.trim().replace(/\\s+/g, ' '))",
            )
            .await;
        serde_json::from_value(names).expect("names")
    }

    async fn screenshot(&mut self, name: &str) {
        self.page
            .screenshot(&screenshot_path(&format!("dashboard-{name}.png")))
            .await;
    }

    /// Nothing went wrong in the page, and it asked nothing of any host but the gateway.
    async fn check_clean(&mut self, app: &TestApp) {
        let problems = self.page.problems();
        assert!(problems.is_empty(), "{problems:#?}");
        self.check_requests(app).await;
    }

    /// The page asked nothing of any host but the gateway, and broke no rule of its
    /// Content-Security-Policy.
    async fn check_requests(&mut self, app: &TestApp) {
        let violations = self.page.eval("window.cspViolations").await;
        assert_eq!(violations, json!([]), "Content-Security-Policy violations");
        let own = [
            format!("http://{}/", app.addr),
            format!("ws://{}/", app.addr),
        ];
        let requested = self.page.requested();
        assert!(!requested.is_empty());
        for url in &requested {
            assert!(
                own.iter().any(|prefix| url.starts_with(prefix)) || url.starts_with("data:"),
                "the page asked another host: {url}"
            );
            assert!(url.contains("//127.0.0.1:"), "{url}");
        }
    }

    /// Waits until the page is live again: subscribed, its state in hand.
    async fn wait_live(&mut self) {
        self.page
            .wait_for(
                "the dashboard, live",
                "document.getElementById('live').innerText === 'Live' && \
                 !!document.querySelector('tr[data-platform]')",
            )
            .await;
    }

    /// The `callRecordingEvents` messages the page received, in order.
    fn events_received(&self) -> Vec<Value> {
        self.page
            .events
            .iter()
            .filter(|e| e["method"] == "Network.webSocketFrameReceived")
            .filter_map(|e| e["params"]["response"]["payloadData"].as_str())
            .filter_map(|text| serde_json::from_str::<Value>(text).ok())
            .filter(|m| m["type"] == "next")
            .map(|m| m["payload"]["data"]["callRecordingEvents"].clone())
            .collect()
    }

    /// How many times the page fetched its whole state.
    fn state_fetches(&self, app: &TestApp) -> usize {
        self.page
            .posted_to(&app.url("/graphql"))
            .iter()
            .filter(|body| body.contains("query DashboardState"))
            .count()
    }

    async fn close(self) {
        self.chromium.kill().await;
        println!(
            "browser test took {:.1} s",
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// The REST body of one platform.
async fn rest_platform(app: &TestApp, name: &str) -> (StatusCode, Value) {
    app.get(&platform_path(name)).await
}

/// The message of the error a REST login with these credentials gets, and its status.
async fn login_refusal(app: &TestApp, username: &str, password: &str) -> (StatusCode, String) {
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/login/",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await;
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, message)
}

#[tokio::test]
async fn a_system_admin_manages_platforms_in_the_browser() {
    let app = TestApp::start().await;
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Existing Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.add_user("operator", "operator-password", 16, None, None)
        .await;
    app.add_user("viewer", "viewer-password", 8, Some("t1"), Some("g1"))
        .await;
    let assignment = "/api/v1/tenants/t1/groups/g1/services/call_recording/";
    let (status, body) = app
        .admin(
            Method::PUT,
            assignment,
            Some(json!({"name": "Existing Platform"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let Some(mut ui) = Dashboard::open(&app, "/").await else {
        return;
    };
    // `/` led to the dashboard, whose form a screen reader finds by its labels.
    let location = ui.page.eval("location.pathname").await;
    assert_eq!(location, "/dashboard/");
    assert_eq!(ui.page.accessible("textbox", "Username").await, 1);
    assert_eq!(ui.page.accessible("textbox", "Password").await, 1);
    assert_eq!(ui.page.accessible("button", "Sign in").await, 1);
    ui.screenshot("sign-in").await;

    // A wrong password shows the server's message; so does a locked username.
    let (status, expected) = login_refusal(&app, "operator", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    ui.sign_in("operator", "wrong-password").await;
    ui.page
        .wait_for(
            "the refused login's message",
            &format!(
                "document.getElementById('sign-in-error').innerText === {:?}",
                expected
            ),
        )
        .await;
    for _ in 0..5 {
        login_refusal(&app, "viewer", "wrong-password").await;
    }
    let (status, locked) = login_refusal(&app, "viewer", "viewer-password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{locked}");
    ui.sign_in("viewer", "viewer-password").await;
    let shown = ui
        .page
        .wait_for(
            "the lockout's message",
            "(() => { const t = document.getElementById('sign-in-error').innerText; \
             return t.startsWith('too many failed logins') ? t : null; })()",
        )
        .await;
    let prefix = locked.split(';').next().unwrap();
    assert!(
        shown.as_str().unwrap().starts_with(prefix),
        "{shown} / {locked}"
    );
    ui.screenshot("sign-in-refused").await;

    ui.sign_in("operator", "operator-password").await;
    ui.wait_live().await;
    assert_eq!(
        ui.page
            .accessible("table", "Call recording platforms")
            .await,
        1
    );
    assert_eq!(ui.page.accessible("region", "Recent changes").await, 1);
    ui.wait_row(
        "Existing Platform",
        &[
            "10.0.32.55",
            "222",
            "UDP",
            "Dual",
            "1.0",
            "no",
            "test description",
            "default",
            "1",
        ],
    )
    .await;
    let who = ui.text("#who").await;
    assert_eq!(who, "operator (System Admin)");
    ui.screenshot("signed-in").await;

    // Add a platform through the form, with the keyboard's Enter to submit.
    // With the keyboard: Enter on the button opens the form, focus on its first field.
    ui.page
        .eval("document.getElementById('add-platform').focus()")
        .await;
    ui.page.press("Enter").await;
    ui.page
        .wait_for(
            "the add form, focused",
            "document.getElementById('platform-dialog').open && \
             document.activeElement === document.getElementById('pf-name')",
        )
        .await;
    assert_eq!(ui.page.accessible("dialog", "Add platform").await, 1);
    for label in [
        "name",
        "netAddress",
        "port",
        "description",
        "transportProtocol",
    ] {
        let role = if label == "transportProtocol" {
            "combobox"
        } else {
            "textbox"
        };
        assert_eq!(ui.page.accessible(role, label).await, 1, "{label}");
    }
    ui.page.fill("#pf-name", "Browser Platform").await;
    ui.page.fill("#pf-netAddress", "192.0.2.10").await;
    ui.page.fill("#pf-port", "5060").await;
    ui.page
        .eval("document.getElementById('pf-transportProtocol').value = 'TCP'")
        .await;
    ui.page.click("#pf-supportVideoRecording").await;
    ui.page
        .fill("#pf-description", "added in the browser")
        .await;
    ui.screenshot("add-form").await;
    ui.page.press("Enter").await;
    ui.wait_row(
        "Browser Platform",
        &[
            "192.0.2.10",
            "5060",
            "TCP",
            "yes",
            "added in the browser",
            "Make default Browser Platform",
        ],
    )
    .await;
    let (status, body) = rest_platform(&app, "Browser Platform").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["port"], 5060, "{body}");
    assert_eq!(body["transportProtocol"], "TCP", "{body}");
    assert_eq!(body["supportVideoRecording"], true, "{body}");
    ui.screenshot("added").await;

    // Make it the default.
    ui.page
        .click("[data-focus-key='default:Browser Platform']")
        .await;
    ui.wait_row("Browser Platform", &["default"]).await;
    ui.wait_row("Existing Platform", &["Make default Existing Platform"])
        .await;
    let (_, body) = rest_platform(&app, "Browser Platform").await;
    assert_eq!(body["default"], true, "{body}");
    ui.screenshot("made-default").await;

    // Edit its port.
    ui.page
        .click("[data-focus-key='edit:Browser Platform']")
        .await;
    assert_eq!(
        ui.page.accessible("dialog", "Edit Browser Platform").await,
        1
    );
    ui.page.fill("#pf-port", "5070").await;
    ui.page.click("#platform-save").await;
    ui.wait_row("Browser Platform", &["5070"]).await;
    let (_, body) = rest_platform(&app, "Browser Platform").await;
    assert_eq!(body["port"], 5070, "{body}");
    assert_eq!(body["description"], "added in the browser", "{body}");

    // A value the server refuses: its message stands next to the field, which says it is
    // invalid and is described by the message; nothing changes.
    ui.page
        .click("[data-focus-key='edit:Browser Platform']")
        .await;
    ui.page.fill("#pf-port", "70000").await;
    ui.page.click("#platform-save").await;
    let message = ui
        .page
        .wait_for(
            "the port's error",
            "(() => { const t = document.getElementById('pf-port-error').innerText; \
             return t ? t : null; })()",
        )
        .await;
    assert_eq!(message, "port must be 1-65535 (got 70000)");
    let field = ui
        .page
        .eval(
            "(() => { const i = document.getElementById('pf-port'); \
             return [i.getAttribute('aria-invalid'), i.getAttribute('aria-describedby'), \
             document.activeElement === i]; })()",
        )
        .await;
    assert_eq!(field, json!(["true", "pf-port-hint pf-port-error", true]));
    let (_, body) = rest_platform(&app, "Browser Platform").await;
    assert_eq!(body["port"], 5070, "{body}");
    ui.screenshot("refused-value").await;
    ui.page.press("Escape").await;
    ui.page
        .wait_for(
            "the dialog to close, focus back on its button",
            "!document.getElementById('platform-dialog').open && \
             document.activeElement.dataset.focusKey === 'edit:Browser Platform'",
        )
        .await;

    // A delete the rules refuse (a group uses the platform) shows the server's message.
    let (status, refusal) = app
        .admin(Method::DELETE, &platform_path("Existing Platform"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refusal}");
    let expected = refusal["errors"][0]["message"].as_str().unwrap().to_owned();
    ui.page
        .click("[data-focus-key='delete:Existing Platform']")
        .await;
    ui.page.click("#delete-form button.danger").await;
    ui.page
        .wait_for(
            "the refused delete's message",
            &format!(
                "document.querySelector('#delete-form [data-error-for=\"\"]').innerText === {:?}",
                expected
            ),
        )
        .await;
    ui.wait_row("Existing Platform", &["10.0.32.55"]).await;
    ui.screenshot("refused-delete").await;
    ui.page.click("#delete-form button.secondary").await;

    // Changes made elsewhere show without a reload, within a second.
    let sent = Instant::now();
    let (status, body) = app
        .admin(
            Method::PUT,
            &platform_path("Existing Platform"),
            Some(json!({"default": true, "port": 333})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ui.wait_row_within(
        LIVE.saturating_sub(sent.elapsed()),
        "Existing Platform",
        &["333", "default"],
    )
    .await;
    println!(
        "a REST change showed after {} ms",
        sent.elapsed().as_millis()
    );
    // Recent changes has it first: who, what, when.
    let newest = ui
        .page
        .wait_for(
            "the REST change in Recent changes",
            "(() => { const li = document.querySelector('#changes > li'); \
             return li && li.innerText.includes('port 222 → 333') ? li.innerText : null; })()",
        )
        .await;
    let newest = newest.as_str().unwrap();
    assert!(newest.contains("admin"), "{newest}");
    assert!(newest.contains("modifyPlatform"), "{newest}");
    assert!(
        newest.contains("default: Browser Platform → Existing Platform"),
        "{newest}"
    );
    ui.wait_row("Browser Platform", &["Make default Browser Platform"])
        .await;
    let sent = Instant::now();
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Remote Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ui.wait_row_within(
        LIVE.saturating_sub(sent.elapsed()),
        "Remote Platform",
        &["10.0.32.55", "0"],
    )
    .await;
    ui.screenshot("live").await;

    // Properties: a refused value is explained next to its field; a good one is saved.
    ui.page.fill("#prop-maxConsecutiveFailures", "20").await;
    ui.page.click("#properties button[type=submit]").await;
    let message = ui
        .page
        .wait_for(
            "the property's error",
            "(() => { const t = document.querySelector('[data-error-for=\"maxConsecutiveFailures\"]')\
             .innerText; return t ? t : null; })()",
        )
        .await;
    assert!(
        message.as_str().unwrap().contains("maxConsecutiveFailures"),
        "{message}"
    );
    ui.page.fill("#prop-maxConsecutiveFailures", "7").await;
    ui.page.click("#properties button[type=submit]").await;
    ui.page
        .wait_for(
            "the property saved",
            "!document.querySelector('[data-error-for=\"maxConsecutiveFailures\"]').innerText && \
             document.getElementById('properties').dataset.dirty === 'false'",
        )
        .await;
    let (_, body) = app.get(&format!("{CALL_RECORDING}/properties/")).await;
    assert_eq!(body["maxConsecutiveFailures"], 7, "{body}");

    // The group's platform, changed from its select.
    let select = "#group-t1-g1";
    let shown = ui
        .page
        .eval(&format!("document.querySelector('{select}').value"))
        .await;
    assert_eq!(shown, "Existing Platform");
    assert_eq!(
        ui.page
            .accessible("combobox", "g1 (tenant t1) platform")
            .await,
        1
    );
    ui.page
        .eval(&format!(
            "(() => {{ const s = document.querySelector('{select}'); s.value = 'Remote Platform'; \
             s.dispatchEvent(new Event('change')); }})()"
        ))
        .await;
    ui.wait_row("Remote Platform", &["1"]).await;
    ui.wait_row("Existing Platform", &["0", "default"]).await;
    let (_, body) = app.get(assignment).await;
    assert_eq!(body["name"], "Remote Platform", "{body}");

    // Delete, from the dialog.
    ui.page
        .click("[data-focus-key='delete:Browser Platform']")
        .await;
    ui.page.click("#delete-form button.danger").await;
    ui.wait_no_row(STEP, "Browser Platform").await;
    let (status, _) = rest_platform(&app, "Browser Platform").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    ui.screenshot("deleted").await;

    // The page was not reloaded: one document (its redirect from `/` is the same request).
    let documents: std::collections::BTreeSet<&str> = ui
        .page
        .events
        .iter()
        .filter(|e| e["method"] == "Network.requestWillBeSent" && e["params"]["type"] == "Document")
        .filter_map(|e| e["params"]["requestId"].as_str())
        .collect();
    let documents = documents.len();
    assert_eq!(documents, 1, "the page was reloaded");

    // Readable on a phone: nothing wider than the screen but the table, which scrolls.
    ui.page.viewport(390, 844, true).await;
    let fits = ui
        .page
        .eval(
            "[document.documentElement.scrollWidth, window.innerWidth, visualViewport.scale, \
             document.querySelector('.scroll').scrollWidth > 390]",
        )
        .await;
    assert_eq!(
        fits,
        json!([390, 390, 1, true]),
        "[page, window, zoom, table scrolls]"
    );
    ui.screenshot("phone").await;
    ui.page.viewport(1280, 800, false).await;

    // Sign out: the session ends on the server too.
    ui.page.click("#sign-out").await;
    ui.page
        .wait_for(
            "the sign-in form again",
            "!document.getElementById('sign-in-section').hidden && \
             document.getElementById('dashboard').hidden",
        )
        .await;
    let logout = app.url("/api/v1/logout/");
    assert_eq!(ui.page.wait_answered(&logout).await, 200);
    let posted = ui.page.posted_to(&logout);
    assert_eq!(posted.len(), 1, "{posted:?}");
    let refresh: Value = serde_json::from_str(&posted[0]).unwrap();
    let (status, _) = app
        .refresh(refresh["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session still lives");
    ui.check_clean(&app).await;
    ui.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_group_admin_sees_the_platforms_and_no_controls_it_cannot_use() {
    let app = TestApp::start().await;
    for name in ["Platform A", "Platform B"] {
        let (status, body) = app
            .admin(Method::POST, &platforms_path(), Some(platform(name)))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    app.add_user("group", "group-password", 8, Some("t1"), Some("g1"))
        .await;
    app.add_user("tenant", "tenant-password", 12, Some("t1"), None)
        .await;
    app.add_user("other", "other-password", 8, Some("t1"), Some("g2"))
        .await;
    app.add_user("elsewhere", "other-password", 12, Some("t2"), None)
        .await;
    let Some(mut ui) = Dashboard::open(&app, "/dashboard/").await else {
        return;
    };
    ui.sign_in("group", "group-password").await;
    ui.wait_row("Platform A", &["default", "10.0.32.55"]).await;
    ui.wait_row("Platform B", &["222"]).await;
    assert_eq!(ui.text("#who").await, "group (Group Admin, t1/g1)");
    assert_eq!(
        ui.page
            .accessible("table", "Call recording platforms")
            .await,
        1
    );

    // Only signing out and choosing its own group's platform are there to use; no
    // platform controls, no properties, no audit trail (all System Admin only).
    let buttons = ui.buttons().await;
    assert_eq!(buttons, ["Sign out", "Reload"], "{buttons:?}");
    let headers = ui
        .page
        .eval("[...document.querySelectorAll('#platforms thead th')].map(th => th.innerText)")
        .await;
    assert!(
        !headers.as_array().unwrap().contains(&json!("Actions")),
        "{headers}"
    );
    for hidden in ["#properties-section", "#changes-section"] {
        let shown = ui
            .page
            .eval(&format!(
                "document.querySelector('{hidden}').checkVisibility()"
            ))
            .await;
        assert_eq!(shown, false, "{hidden} is shown");
    }
    assert_eq!(ui.page.accessible("region", "Recent changes").await, 0);
    assert_eq!(
        ui.page
            .accessible("combobox", "g1 (tenant t1) platform")
            .await,
        1
    );
    let live = ui.text("#live").await;
    assert!(live.starts_with("Not live"), "{live}");
    ui.screenshot("group-admin").await;

    // Its one control works: the group's platform.
    ui.page
        .eval(
            "(() => { const s = document.querySelector('#group-t1-g1'); s.value = 'Platform B'; \
             s.dispatchEvent(new Event('change')); })()",
        )
        .await;
    ui.page
        .wait_for(
            "the assignment's answer",
            "document.querySelector('#group-t1-g1').value === 'Platform B' && \
             !document.querySelector('#group-t1-g1').hasAttribute('aria-invalid')",
        )
        .await;
    // The select shows the new value before its request is answered: the API tells when.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = app
            .get("/api/v1/tenants/t1/groups/g1/services/call_recording/")
            .await;
        if body["name"] == "Platform B" {
            break;
        }
        assert!(Instant::now() < deadline, "never assigned: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A Tenant Admin sees its tenant's groups, each with its select, and no more.
    ui.page.click("#sign-out").await;
    ui.page
        .wait_for(
            "the sign-in form again",
            "document.activeElement === document.getElementById('username')",
        )
        .await;
    ui.sign_in("tenant", "tenant-password").await;
    ui.page
        .wait_for(
            "the tenant's groups",
            "!!document.querySelector('#group-t1-g1') && !!document.querySelector('#group-t1-g2')",
        )
        .await;
    assert_eq!(ui.text("#who").await, "tenant (Tenant Admin, t1)");
    let buttons = ui.buttons().await;
    assert_eq!(buttons, ["Sign out", "Reload"], "{buttons:?}");
    let tenants = ui
        .page
        .eval("[...document.querySelectorAll('#groups h3')].map(h => h.innerText)")
        .await;
    assert_eq!(tenants, json!(["t1"]));
    ui.screenshot("tenant-admin").await;
    ui.check_clean(&app).await;
    ui.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_dropped_subscription_resumes_from_the_last_cursor_without_a_refetch() {
    let app = TestApp::start().await;
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("First Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let Some(mut ui) = Dashboard::open(&app, "/dashboard/").await else {
        return;
    };
    ui.sign_in("admin", ADMIN_PASSWORD).await;
    ui.wait_live().await;

    // A change seen live: the page holds its cursor.
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Seen Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ui.wait_row("Seen Platform", &["222"]).await;
    let cursor = ui
        .events_received()
        .iter()
        .rev()
        .find_map(|event| event["cursor"].as_str().map(str::to_owned))
        .expect("a live event with a cursor");

    // The server goes away, and a change is made while the page is not connected: the page
    // waits longer after each failed attempt (0.25 s, 0.5, 1, then 2), and after its third
    // the server comes back, long before the fourth, with the change made.
    let sockets = |ui: &Dashboard| {
        ui.page
            .events
            .iter()
            .filter(|e| e["method"] == "Network.webSocketCreated")
            .count()
    };
    let before = sockets(&ui);
    let addr = app.addr;
    let data = app.stop().await;
    let deadline = Instant::now() + STEP;
    while sockets(&ui) < before + 3 {
        assert!(
            Instant::now() < deadline,
            "no three reconnections within {STEP:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        ui.page.eval("0").await;
    }
    ui.screenshot("reconnecting").await;
    let app = TestApp::restart_at(data, addr, &[]).await;
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("Missed Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    ui.wait_row("Missed Platform", &["222"]).await;
    ui.wait_live().await;
    let subscribes: Vec<Value> = ui
        .page
        .websocket_sent()
        .into_iter()
        .filter(|m| m["type"] == "subscribe")
        .collect();
    assert!(subscribes.len() >= 2, "{subscribes:#?}");
    assert_eq!(subscribes[0]["payload"]["variables"], json!({}));
    assert_eq!(
        subscribes.last().unwrap()["payload"]["variables"],
        json!({ "after": cursor }),
        "the page did not resume from its last cursor"
    );
    assert_eq!(
        ui.state_fetches(&app),
        1,
        "the page fetched its state again"
    );
    // Recent changes caught up too, newest first.
    ui.page
        .wait_for(
            "the missed change in Recent changes",
            "document.querySelector('#changes > li')?.innerText.includes('platform Missed Platform added')",
        )
        .await;
    ui.screenshot("resumed").await;
    // Failed reconnections are logged by the browser; only requests are checked here.
    ui.check_requests(&app).await;
    ui.close().await;
    app.stop().await;
}

#[tokio::test]
async fn the_access_token_is_renewed_before_it_expires_and_an_ended_session_signs_out() {
    let app = TestApp::start_with(&["--access-token-ttl", "3"]).await;
    let (status, body) = app
        .admin(
            Method::POST,
            &platforms_path(),
            Some(platform("First Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let Some(mut ui) = Dashboard::open(&app, "/dashboard/").await else {
        return;
    };
    app.add_user("operator", "operator-password", 16, None, None)
        .await;
    ui.sign_in("operator", "operator-password").await;
    ui.wait_live().await;

    // Two renewals: the token the page signed in with has expired by then.
    let renewal = app.url(REFRESH);
    let deadline = Instant::now() + STEP;
    while ui
        .page
        .requested()
        .iter()
        .filter(|url| **url == renewal)
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no two renewals within {STEP:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        ui.page.eval("0").await;
    }
    ui.wait_live().await;
    // The test's own token has expired too.
    let token = app.login("admin", ADMIN_PASSWORD).await;
    let sent = Instant::now();
    let (status, body) = app
        .call(
            Method::POST,
            &platforms_path(),
            Some(&token),
            Some(platform("Later Platform")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ui.wait_row_within(
        LIVE.saturating_sub(sent.elapsed()),
        "Later Platform",
        &["222"],
    )
    .await;
    let who = ui.text("#who").await;
    assert_eq!(who, "operator (System Admin)");
    // Each renewal moved the subscription to the new token, resuming from the newest cursor
    // (the audit trail's, as no change was made yet) instead of fetching the state again.
    let subscribes: Vec<Value> = ui
        .page
        .websocket_sent()
        .into_iter()
        .filter(|m| m["type"] == "subscribe")
        .collect();
    assert!(subscribes.len() >= 3, "{subscribes:#?}");
    for later in &subscribes[1..] {
        let after = &later["payload"]["variables"]["after"];
        assert!(after.is_string(), "{later}");
    }
    assert_eq!(
        ui.state_fetches(&app),
        1,
        "the page fetched its state again"
    );
    // Renewed before expiry: the stream was never ended for an old token.
    let refused: Vec<&Value> = ui
        .page
        .events
        .iter()
        .filter(|e| {
            e["method"] == "Network.webSocketFrameReceived"
                && e["params"]["response"]["payloadData"]
                    .as_str()
                    .is_some_and(|text| text.contains("UNAUTHENTICATED"))
        })
        .collect();
    assert!(refused.is_empty(), "{refused:#?}");

    // The session ends elsewhere (the user is deleted): the page is told at once, by its
    // stream, and goes back to the sign-in form with the server's word for it.
    let (status, body) = app
        .call(
            Method::DELETE,
            "/api/v1/local/users/operator/",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let message = ui
        .page
        .wait_for(
            "the sign-in form, with why",
            "(() => { const t = document.getElementById('sign-in-error').innerText; \
             return !document.getElementById('sign-in-section').hidden && t ? t : null; })()",
        )
        .await;
    println!("the page says: {message}");
    assert_eq!(
        ui.page
            .eval("document.getElementById('dashboard').hidden")
            .await,
        true
    );
    ui.check_clean(&app).await;
    ui.close().await;
    app.stop().await;
}

#[tokio::test]
async fn reachability_shows_and_changes_live_when_probing_is_on() {
    let app = TestApp::start_with(&[
        "--probe-platforms",
        "--probe-interval",
        "0.1",
        "--probe-failures",
        "1",
    ])
    .await;
    let peer = Responder::udp(Some("200 OK"), Duration::ZERO).await;
    for (name, port) in [
        ("Answering Platform", peer.port),
        ("Silent Platform", dead_port().await),
    ] {
        let mut body = platform(name);
        body["netAddress"] = json!("127.0.0.1");
        body["port"] = json!(port);
        let (status, answer) = app.admin(Method::POST, &platforms_path(), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let Some(mut ui) = Dashboard::open(&app, "/dashboard/").await else {
        return;
    };
    ui.sign_in("admin", ADMIN_PASSWORD).await;
    ui.wait_live().await;
    ui.wait_row("Answering Platform", &["UP"]).await;
    ui.wait_row("Silent Platform", &["DOWN"]).await;
    let headers = ui
        .page
        .eval("[...document.querySelectorAll('#platforms thead th')].map(th => th.innerText)")
        .await;
    assert!(
        headers.as_array().unwrap().contains(&json!("Reachability")),
        "{headers}"
    );
    ui.screenshot("reachability").await;

    // The peer goes away: its platform turns DOWN on the page, from the live event.
    drop(peer);
    ui.wait_row("Answering Platform", &["DOWN"]).await;
    let fetches = ui.state_fetches(&app);
    assert_eq!(fetches, 1, "the state was fetched again");
    ui.check_clean(&app).await;
    ui.close().await;
    app.stop().await;
}
