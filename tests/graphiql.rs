//! GraphiQL is served from the binary: the page, every script and style it loads, and nothing
//! from another host. Then, in headless Chromium (Debian's `chromium`, driven over the
//! DevTools protocol), a query with a token runs and its result renders, and a subscription
//! over `/graphql/ws` delivers a live event. Every wait is a bounded poll of the page.

mod common;

use std::time::Instant;

use common::browser::*;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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

/// The text of the GraphiQL editor (a CodeMirror 5 instance) under `selector`.
fn editor_value(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({selector:?}); \
         return e && e.CodeMirror ? e.CodeMirror.getValue() : null; }})()"
    )
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
    if !chromium_available("GraphiQL") {
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
    page.open_watched_page().await;
    page.navigate(&app.url("/graphql")).await;

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
    let requested = page.requested();
    for url in &requested {
        assert!(
            own.iter().any(|prefix| url.starts_with(prefix)) || url.starts_with("data:"),
            "the page asked another host: {url}"
        );
    }
    let websocket = format!("ws://{}/graphql/ws", app.addr);
    assert!(requested.contains(&websocket), "{requested:#?}");
    chromium.kill().await;
    println!("browser test took {:.1} s", started.elapsed().as_secs_f64());
    app.stop().await;
}
