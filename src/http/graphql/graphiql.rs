//! GraphiQL, served from the binary: `GET /graphql` is the page and `GET /graphql/assets/{file}`
//! its scripts and styles. React, ReactDOM and GraphiQL are vendored under `assets/graphiql/`
//! at pinned versions (with their licences), so the page loads nothing from another host and
//! works on networks without internet access. Its Content-Security-Policy holds it to that.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::Error;
use crate::http::error::ApiError;

/// The route of the assets; `{file}` is one of [`ASSETS`]' names.
pub const ASSETS_PATH: &str = "/graphql/assets/{file}";

/// The page. It names the assets by their paths under `/graphql/assets/`.
pub const PAGE: &str = include_str!("graphiql.html");

/// Only this server's own scripts, styles and connections (the WebSocket included); fonts and
/// icons are inlined as `data:` URLs. GraphiQL and CodeMirror set inline styles.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Versioned files never change under their name: a new version is a new name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page's own script changes with the gateway, under the same name.
const REVALIDATE: &str = "no-cache";

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub cache_control: &'static str,
    pub body: &'static [u8],
}

macro_rules! vendored {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            cache_control: IMMUTABLE,
            body: include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/graphiql/",
                $name
            )),
        }
    };
}

/// Everything served under `/graphql/assets/`.
pub const ASSETS: &[Asset] = &[
    vendored!("react-18.3.1.production.min.js", JS),
    vendored!("react-dom-18.3.1.production.min.js", JS),
    vendored!("graphiql-3.9.0.min.js", JS),
    vendored!("graphiql-3.9.0.min.css", CSS),
    vendored!("LICENSE-graphiql.txt", TEXT),
    vendored!("LICENSE-react.txt", TEXT),
    vendored!("LICENSE-react-dom.txt", TEXT),
    Asset {
        name: "callrec-graphiql.js",
        content_type: JS,
        cache_control: REVALIDATE,
        body: include_bytes!("graphiql.js"),
    },
];

/// `GET /graphql`.
pub async fn page() -> Response {
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

/// `GET /graphql/assets/{file}`; 404 for any other name.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, asset.cache_control),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => ApiError(Error::NotFound("no such GraphiQL asset".into())).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths the page loads, in order.
    fn referenced(page: &str) -> Vec<&str> {
        page.split(['"', '\''])
            .filter(|part| part.starts_with("/graphql/assets/"))
            .collect()
    }

    #[test]
    fn the_page_loads_only_known_assets() {
        let paths = referenced(PAGE);
        assert_eq!(paths.len(), 5, "{paths:?}");
        for path in paths {
            let name = path.trim_start_matches("/graphql/assets/");
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "{name} is not served"
            );
        }
    }

    #[test]
    fn assets_have_unique_names_and_content() {
        for (i, asset) in ASSETS.iter().enumerate() {
            assert!(!asset.body.is_empty(), "{} is empty", asset.name);
            assert!(
                ASSETS[..i].iter().all(|other| other.name != asset.name),
                "{} twice",
                asset.name
            );
        }
    }
}
