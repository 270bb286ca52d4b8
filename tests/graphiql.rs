//! GraphiQL is served from the binary: the page, every script and style it loads, and nothing
//! from another host.

mod common;

use common::*;
use reqwest::StatusCode;

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
