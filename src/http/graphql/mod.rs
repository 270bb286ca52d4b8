//! The GraphQL API, over the same [`Service`] as the REST layer: every rule, authorization
//! check and error comes from the service; resolvers only parse, call and render.
//!
//! - `POST /graphql`: queries and mutations, one operation or a batch of at most
//!   [`limits::MAX_BATCH`]; the token comes from `Authorization: Bearer <access_token>`.
//! - `GET /graphql`: GraphiQL, with its scripts and styles under `/graphql/assets/`, all from
//!   the binary (see [`graphiql`]).
//! - `/graphql/ws`: WebSocket for subscriptions (and queries), speaking `graphql-transport-ws`
//!   and the older `graphql-ws`. The token comes from the `connection_init` payload
//!   (`{"Authorization": "Bearer ..."}`, or `authorization`) or else from the upgrade
//!   request's `Authorization` header. A connection without a valid token is refused
//!   (`graphql-transport-ws`: close 4403; `graphql-ws`: `connection_error`, then close 4403;
//!   the reason starts with `UNAUTHENTICATED`). A connection not accepted within
//!   `--ws-init-timeout` of opening is closed with 4408 (pings do not count). Messages are
//!   capped at the request body limit. When the server stops, every socket gets a close
//!   frame, 1001 with the reason [`GOING_AWAY`], and the stop waits for them (within its
//!   grace period).
//!
//! Every request, over either transport, takes the one path of [`run`]: limits, kept
//! answers, execution, byte cap, metrics.
//!
//! Metrics: `callrec_graphql_operations_total{operation,outcome}` counts each operation over
//! either transport (see [`labels`]); `callrec_graphql_subscriptions_active` is the number of
//! live subscription streams.
//!
//! Errors: a domain error carries `extensions.code` (its name), `extensions.subErrorCode` (its
//! number) and, for a validation error, `extensions.field`; transport errors carry only a code
//! (see [`error::codes`]). Limits are listed in [`limits`] and [`cost`].

mod answers;
mod audit;
mod context;
pub(crate) mod cost;
pub(crate) mod error;
pub(crate) mod graphiql;
pub(crate) mod labels;
pub(crate) mod limits;
mod mutation;
mod plan;
mod query;
mod reachability;
mod run;
mod subscription;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, Data, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{CloseFrame, Message, close_code};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Sink, SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::PollSender;

pub use self::context::Credentials;
use self::error::{GqlError, codes};
pub use self::mutation::MutationRoot;
pub use self::query::QueryRoot;
use self::run::{Run, Runner, SocketSubscriptions};
pub use self::subscription::{SubscriptionRoot, events};
pub use self::types::CallRecordingEvent;
use super::HttpOptions;
use super::serve::Draining;
use crate::config::{GraphqlArgs, Introspection};
use crate::error::Error;
use crate::service::Service;

pub type CallRecordingSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub const PATH: &str = "/graphql";
pub const WS_PATH: &str = "/graphql/ws";

/// The GraphQL API's bounds, from the command line (see [`GraphqlArgs`]).
#[derive(Debug, Clone)]
pub struct GraphqlOptions {
    pub introspection: Introspection,
    pub max_complexity: u64,
    pub max_response_bytes: usize,
    pub answer_cache_bytes: usize,
    pub subscriptions_per_socket: usize,
    pub max_subscriptions: usize,
    pub ws_init_timeout: Duration,
}

impl From<&GraphqlArgs> for GraphqlOptions {
    fn from(args: &GraphqlArgs) -> Self {
        GraphqlOptions {
            introspection: args.graphql_introspection,
            max_complexity: args.graphql_max_complexity,
            max_response_bytes: args.max_response_bytes,
            answer_cache_bytes: args.graphql_answer_cache_mb.saturating_mul(1024 * 1024),
            subscriptions_per_socket: args.graphql_subscriptions_per_socket,
            max_subscriptions: args.graphql_max_subscriptions,
            ws_init_timeout: Duration::from_secs(args.ws_init_timeout),
        }
    }
}

impl Default for GraphqlOptions {
    /// The command line's defaults.
    fn default() -> Self {
        use clap::{Args, FromArgMatches};
        let command = GraphqlArgs::augment_args(clap::Command::new("defaults"));
        let args = command
            .try_get_matches_from(["defaults"])
            .and_then(|matches| GraphqlArgs::from_arg_matches(&matches));
        match args {
            Ok(args) => GraphqlOptions::from(&args),
            Err(e) => unreachable!("every GraphQL flag has a default: {e}"),
        }
    }
}

/// The schema served over `service`. Its own limits (depth, recursion, directives) are
/// built in; the others are applied before execution by [`run`]. Introspection is allowed
/// here and gated there.
pub fn schema(service: Arc<Service>) -> CallRecordingSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(limits::MAX_DEPTH)
        .limit_recursive_depth(limits::MAX_RECURSIVE_DEPTH)
        .limit_directives(limits::MAX_DIRECTIVES)
        .data(service)
        .finish()
}

/// The schema's SDL, as kept in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

#[derive(Clone)]
struct GraphqlState {
    runner: Arc<Runner>,
    service: Arc<Service>,
    /// The largest WebSocket message, as for request bodies.
    message_limit: usize,
    ws_init_timeout: Duration,
    /// Ends the WebSockets, with a close frame, when the server stops.
    draining: Draining,
}

/// The GraphQL routes, to be merged into the application's router.
pub fn routes<S>(service: Arc<Service>, options: &HttpOptions) -> Router<S> {
    let state = GraphqlState {
        runner: Arc::new(Runner::new(
            schema(service.clone()),
            service.clone(),
            options.graphql.clone(),
        )),
        service,
        message_limit: options.body_limit,
        ws_init_timeout: options.graphql.ws_init_timeout,
        draining: options.draining.clone(),
    };
    Router::new()
        .route(PATH, get(graphiql::page).post(execute))
        .route(graphiql::ASSETS_PATH, get(graphiql::asset))
        .route(WS_PATH, get(websocket))
        .with_state(state)
}

/// A request refused before any operation ran, as a GraphQL error body.
fn refused(status: StatusCode, error: GqlError) -> Response {
    let body = json!({ "errors": [error.into_server_error()] });
    (status, axum::Json(body)).into_response()
}

fn refused_domain(error: Error) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    refused(status, GqlError::from(error))
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// `POST /graphql`. The body is read through axum's `Bytes`, so the application's body limit
/// applies (413 when over it).
async fn execute(
    State(state): State<GraphqlState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refused_domain(Error::PayloadTooLarge(
                "the request body is too large".into(),
            ));
        }
        Err(rejection) => {
            return refused_domain(Error::invalid_body(format!(
                "the request body could not be read: {rejection}"
            )));
        }
    };
    // Decided on the first character: serde would also read `[]` as a (blank) single request.
    let is_batch = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let parsed = if is_batch {
        serde_json::from_slice(&bytes).map(BatchRequest::Batch)
    } else {
        serde_json::from_slice(&bytes).map(BatchRequest::Single)
    };
    let requests = match parsed {
        Ok(BatchRequest::Single(request)) => vec![request],
        Ok(BatchRequest::Batch(requests)) => requests,
        Err(e) => {
            return refused_domain(Error::invalid_body(format!(
                "the request body is not a GraphQL request: {e}"
            )));
        }
    };
    if is_batch && (requests.is_empty() || requests.len() > limits::MAX_BATCH) {
        return refused(
            StatusCode::BAD_REQUEST,
            GqlError::transport(
                codes::BATCH_TOO_LARGE,
                format!(
                    "a batch must hold 1 to {} operations (got {})",
                    limits::MAX_BATCH,
                    requests.len()
                ),
            ),
        );
    }
    let answers = state
        .runner
        .post(requests, Credentials::from_headers(&headers))
        .await;
    let body = if is_batch {
        Bytes::from(crate::json::array_of(&answers))
    } else {
        answers.into_iter().next().unwrap_or_default()
    };
    ([(axum::http::header::CONTENT_TYPE, GRAPHQL_RESPONSE)], body).into_response()
}

/// Whether a WebSocket's `connection_init` was accepted or refused (or neither yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Waiting,
    Accepted,
    Refused,
}

/// Close codes of `graphql-transport-ws`, used for the older protocol too.
pub mod close_codes {
    /// `connection_init` was refused (no valid token).
    pub const FORBIDDEN: u16 = 4403;
    /// No accepted `connection_init` within the init timeout.
    pub const INIT_TIMEOUT: u16 = 4408;
}

/// `/graphql/ws`.
async fn websocket(
    State(state): State<GraphqlState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = Credentials::from_headers(&headers);
    let GraphqlState {
        runner,
        service,
        message_limit,
        ws_init_timeout,
        draining,
    } = state;
    let legacy = speaks_legacy(&headers);
    // Taken now, not once upgraded, so that a stop in between still waits for this socket.
    let running = draining.track();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(message_limit)
        .max_frame_size(message_limit)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            let (to_client, outgoing) = mpsc::channel(OUTGOING_BUFFER);
            let (init_tx, init) = watch::channel(Init::Waiting);
            let graphql = GraphQLWebSocket::new_with_pair(
                PollSender::new(to_client),
                stream,
                Run(runner),
                protocol,
            )
            .on_connection_init(move |payload| async move {
                let outcome = connection_init(&service, from_header, payload);
                init_tx.send_replace(if outcome.is_ok() {
                    Init::Accepted
                } else {
                    Init::Refused
                });
                outcome
            })
            .serve();
            let socket = Socket {
                outgoing,
                init,
                init_timeout: ws_init_timeout,
                legacy,
            };
            socket.run(graphql, sink, &draining).await;
            drop(running);
        })
        .into_response()
}

/// Whether the protocol chosen (as [`GraphQLProtocol`] chooses it: the first known one the
/// client offers) is the older `graphql-ws`.
fn speaks_legacy(headers: &HeaderMap) -> bool {
    use async_graphql::http::WebSocketProtocols;
    headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok())
        .and_then(|protocols| {
            protocols
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        })
        .is_some_and(|p| matches!(p, WebSocketProtocols::SubscriptionsTransportWS))
}

/// Messages the GraphQL side of a WebSocket may get ahead of the socket.
const OUTGOING_BUFFER: usize = 16;

/// Said in the close frame sent to every WebSocket when the server stops.
pub const GOING_AWAY: &str = "the server is stopping";

/// Said when a connection was not accepted in time, as `graphql-transport-ws` words it.
pub const INIT_TIMEOUT_REASON: &str = "Connection initialisation timeout";

/// The socket side of a GraphQL WebSocket: passes on what the GraphQL side sends and decides
/// how the connection closes.
struct Socket {
    outgoing: mpsc::Receiver<Message>,
    init: watch::Receiver<Init>,
    init_timeout: Duration,
    /// `graphql-ws` (subscriptions-transport-ws), whose server never closes by itself.
    legacy: bool,
}

impl Socket {
    /// Runs until the GraphQL side ends, the connection is not accepted within the init
    /// timeout, or the server stops; every ending sends a close frame: 4403 when
    /// `connection_init` was refused, 4408 on the init timeout, 1001 when the server stops,
    /// else what the GraphQL side chose (1000 when it chose none).
    async fn run(
        mut self,
        graphql: impl Future<Output = ()>,
        mut sink: impl Sink<Message> + Unpin,
        draining: &Draining,
    ) {
        let stopping = draining.stopping();
        let deadline = tokio::time::sleep(self.init_timeout);
        tokio::pin!(graphql, stopping, deadline);
        let mut graphql_ended = false;
        let mut initialising = true;
        loop {
            tokio::select! {
                biased;
                () = &mut stopping => {
                    return close(&mut sink, close_code::AWAY, GOING_AWAY).await;
                }
                () = &mut deadline, if initialising => {
                    initialising = false;
                    if *self.init.borrow() == Init::Accepted {
                        continue;
                    }
                    tracing::info!("closing a GraphQL WebSocket not initialised in time");
                    if self.legacy {
                        let error = json!({
                            "type": "connection_error",
                            "payload": {"message": INIT_TIMEOUT_REASON},
                        });
                        let _ = sink.send(Message::Text(error.to_string().into())).await;
                    }
                    return close(&mut sink, close_codes::INIT_TIMEOUT, INIT_TIMEOUT_REASON).await;
                }
                message = self.outgoing.recv() => {
                    let refused = *self.init.borrow() == Init::Refused;
                    match message {
                        Some(Message::Close(frame)) => {
                            let (code, reason) = match frame {
                                Some(frame) if refused => (close_codes::FORBIDDEN, frame.reason),
                                Some(frame) => (frame.code, frame.reason),
                                None => (close_code::NORMAL, "".into()),
                            };
                            return close(&mut sink, code, reason.as_str()).await;
                        }
                        Some(message) => {
                            let reason = refused.then(|| refusal_reason(&message));
                            if sink.send(message).await.is_err() {
                                return;
                            }
                            // The older protocol's server only says `connection_error`.
                            if let Some(reason) = reason {
                                return close(&mut sink, close_codes::FORBIDDEN, &reason).await;
                            }
                        }
                        // The GraphQL side ended and everything it sent is passed on.
                        None => return close(&mut sink, close_code::NORMAL, "").await,
                    }
                }
                () = &mut graphql, if !graphql_ended => graphql_ended = true,
            }
        }
    }
}

/// The message of a `connection_error`, for the close frame that follows it.
fn refusal_reason(message: &Message) -> String {
    let Message::Text(text) = message else {
        return String::new();
    };
    serde_json::from_str::<serde_json::Value>(text.as_str())
        .ok()
        .and_then(|v| v["payload"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Sends a close frame (its reason cut to the 123 bytes a frame holds) and closes.
async fn close(sink: &mut (impl Sink<Message> + Unpin), code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    if sink.send(Message::Close(Some(frame))).await.is_ok() {
        let _ = sink.close().await;
    }
}

/// Accepts the connection only with valid credentials, which then travel with every
/// operation of the connection (and are checked again by each).
fn connection_init(
    service: &Service,
    from_header: Credentials,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let credentials = Credentials::from_init_payload(&payload).unwrap_or(from_header);
    if let Err(e) = credentials.principal(service) {
        return Err(async_graphql::Error::new(format!(
            "{}: {}",
            e.code().name,
            e.public_message()
        )));
    }
    let mut data = Data::default();
    data.insert(credentials);
    data.insert(SocketSubscriptions::default());
    Ok(data)
}
