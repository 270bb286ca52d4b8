//! The operator dashboard, served from the binary: `GET /dashboard/` is the page and
//! `GET /dashboard/{file}` its script and style; `GET /` leads there. The page is built on the
//! public API only (REST sign in, GraphQL and its WebSocket), loads nothing from another host
//! and needs no build step: plain HTML, one JavaScript module and one stylesheet, embedded
//! as they are in the repository.

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::error::Error;
use crate::http::error::ApiError;

pub const PATH: &str = "/dashboard/";

/// The page. It names its two assets by their paths under `/dashboard/`.
pub const PAGE: &str = include_str!("dashboard/index.html");

/// Only this server's own script, style and connections. `connect-src 'self'` covers the
/// WebSocket too: `'self'` matches `ws:`/`wss:` to the page's own host and port. The page
/// builds its DOM without markup strings, so Trusted Types can refuse them all; there are no
/// inline scripts or styles, and forms never submit by navigation.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
     trusted-types 'none'";

/// The page and its assets change with the gateway, under the same names.
const REVALIDATE: &str = "no-cache";

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// Everything served under `/dashboard/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("dashboard/dashboard.js"),
    },
    Asset {
        name: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("dashboard/dashboard.css"),
    },
];

/// The dashboard's routes, to be merged into the application's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_dashboard))
        .route("/dashboard", get(to_dashboard))
        .route(PATH, get(page))
        .route("/dashboard/{file}", get(asset))
}

/// `GET /` and `GET /dashboard`: a temporary redirect, so that the root stays free for
/// something else later.
async fn to_dashboard() -> Redirect {
    Redirect::temporary(PATH)
}

/// `GET /dashboard/`.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, REVALIDATE),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /dashboard/{file}`; 404 for any other name.
async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, REVALIDATE),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => ApiError(Error::NotFound("no such dashboard asset".into())).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        let paths: Vec<&str> = PAGE
            .split('"')
            .filter(|part| part.starts_with("/dashboard/"))
            .collect();
        assert_eq!(paths.len(), ASSETS.len(), "{paths:?}");
        for asset in ASSETS {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
            let path = format!("{PATH}{}", asset.name);
            assert!(paths.contains(&path.as_str()), "{path} is not loaded");
        }
    }
}
