//! The HTTP surface: REST (with its OpenAPI document), GraphQL and the operational paths,
//! behind the middleware every request passes: request id, access log, CORS, timeout, body
//! limit, metrics.

mod connection;
mod dashboard;
pub(crate) mod error;
pub(crate) mod extract;
pub mod graphql;
mod metrics;
mod openapi;
mod ops;
mod refusals;
mod rest;
pub(crate) mod serve;
mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::state::AppState;
use crate::error::Error;
use crate::service::Service;

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Largest accepted request body, in bytes (REST and GraphQL alike).
    pub body_limit: usize,
    /// Longest a request may take before it is answered 408.
    pub request_timeout: Duration,
    /// Origins allowed to call from a browser; none means no CORS headers at all.
    pub cors_origins: Vec<String>,
    pub metrics_token: Option<String>,
    /// Whether `/metrics` is served here (false when it has a listen address of its own).
    pub metrics_here: bool,
    /// The GraphQL API's bounds.
    pub graphql: graphql::GraphqlOptions,
    /// Tells WebSockets that the server is stopping, and lets it wait for them; the same one
    /// must go to [`serve::serve`] in [`serve::ServeOptions`].
    pub draining: serve::Draining,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
            metrics_token: None,
            metrics_here: true,
            graphql: graphql::GraphqlOptions::default(),
            draining: serve::Draining::default(),
        }
    }
}

/// The routes with their OpenAPI operations.
fn documented(options: &HttpOptions) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(rest::routes())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz));
    if options.metrics_here {
        router.routes(routes!(ops::metrics))
    } else {
        router
    }
}

/// The whole application; tests serve the same router.
pub fn app(service: Arc<Service>, options: &HttpOptions) -> Router {
    metrics::install();
    let (router, mut doc) = documented(options).split_for_parts();
    utoipa::Modify::modify(&openapi::ModelRanges, &mut doc);
    openapi::mark_public(&mut doc, options.metrics_token.is_some());
    let doc = Arc::new(doc.to_json().unwrap_or_default());
    let inner = router
        .route(
            OPENAPI_PATH,
            get(move || {
                let doc = doc.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        doc.to_string(),
                    )
                }
            }),
        )
        .merge(graphql::routes(service.clone(), options))
        .merge(dashboard::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(options.body_limit))
        .layer(middleware::from_fn_with_state(service.clone(), up_to_date))
        .layer(middleware::from_fn_with_state(
            options.body_limit,
            refusals::declared_oversize,
        ))
        .layer(middleware::from_fn_with_state(
            options.request_timeout,
            observe,
        ))
        .with_state(AppState::new(service, options));
    let normalized = ServiceBuilder::new()
        .map_request(with_trailing_slash)
        .service(inner);
    let mut app = Router::new().fallback_service(normalized);
    if !options.cors_origins.is_empty() {
        app = app.layer(cors(&options.cors_origins));
    }
    app.layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Only `/metrics`, for a listen address of its own.
pub fn metrics_app(service: Arc<Service>, options: &HttpOptions) -> Router {
    metrics::install();
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(error::not_found)
        .with_state(AppState::new(service, options))
}

/// REST paths are routed with their documented trailing slash; a request without it is
/// routed as if it had it.
fn with_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.starts_with("/api/") && !path.ends_with('/') && path != OPENAPI_PATH {
        let mut target = format!("{path}/");
        if let Some(query) = request.uri().query() {
            target.push('?');
            target.push_str(query);
        }
        if let Ok(uri) = target.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID])
}

/// Before an API request: what other gateways on the same store committed before it is in
/// this one's state (a token logged out elsewhere is refused). Free over a store of one process,
/// and while this gateway holds a read lease on a shared one.
async fn up_to_date(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = (path.starts_with("/api/") && path != OPENAPI_PATH) || path.starts_with("/graphql");
    if api && let Err(e) = service.catch_up_with_store().await {
        return error::ApiError(e).into_response();
    }
    next.run(request).await
}

/// Around every routed request (and the fallbacks): the time limit (408 past it), then one
/// access log line and the request metrics, labelled by route template. Only the path is
/// logged: credentials travel in headers and bodies.
async fn observe(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let run = crate::service::with_request_id(request_id.clone(), next.run(request));
    let response = match tokio::time::timeout(limit, run).await {
        Ok(response) => response,
        Err(_) => error::ApiError(Error::Timeout(format!(
            "the request took longer than {} s; a change it asked for may still have been made",
            limit.as_secs_f64()
        )))
        .into_response(),
    };
    let took = started.elapsed();
    metrics::http_request(route.as_ref(), &method, response.status(), took);
    tracing::info!(
        target: "access",
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = took.as_secs_f64() * 1000.0,
        request_id,
    );
    response
}
