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
//!   (`graphql-transport-ws`: close 1002; `graphql-ws`: `connection_error`; the reason starts
//!   with `UNAUTHENTICATED`). Messages are capped at the request body limit, and a connection
//!   silent for [`INIT_TIMEOUT`] after opening is closed. When the server stops, every socket
//!   gets a close frame, 1001 with the reason [`GOING_AWAY`], and the stop waits for them
//!   (within its grace period).
//!
//! Metrics: `callrec_graphql_operations_total{operation,outcome}` counts each operation over
//! either transport (see [`metered`]); `callrec_graphql_subscriptions_active` is the number of
//! live subscription streams.
//!
//! Errors: a domain error carries `extensions.code` (its name), `extensions.subErrorCode` (its
//! number) and, for a validation error, `extensions.field`; transport errors carry only a code
//! (see [`error::codes`]). Limits are listed in [`limits`].

mod answers;
mod context;
pub mod error;
pub mod graphiql;
pub mod limits;
pub mod metered;
mod mutation;
mod query;
mod reachability;
mod subscription;
mod types;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{BatchRequest, BatchResponse, Data, Executor, Schema, SchemaBuilder};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{CloseFrame, Message, close_code};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use self::answers::{Answers, Question};
pub use self::context::Credentials;
use self::error::{GqlError, codes};
use self::limits::ShapeLimits;
use self::metered::Metered;
pub use self::mutation::MutationRoot;
pub use self::query::QueryRoot;
pub use self::subscription::{SubscriptionRoot, events};
pub use self::types::CallRecordingEvent;
use super::HttpOptions;
use super::serve::Draining;
use crate::error::Error;
use crate::http::metrics;
use crate::service::Service;

pub type CallRecordingSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub const PATH: &str = "/graphql";
pub const WS_PATH: &str = "/graphql/ws";

fn shape_limits(introspection: bool) -> ShapeLimits {
    ShapeLimits {
        introspection,
        ..ShapeLimits::default()
    }
}

/// The schema with its limits, without data. With `shape_extension`, the alias and field
/// caps run as an extension (for the WebSocket, where operations arrive inside the
/// protocol). Any extension routes every field through async-graphql's extension chain, so
/// `POST /graphql` applies the same caps in its handler instead and uses a schema without.
fn builder(
    introspection: bool,
    shape_extension: bool,
) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(limits::MAX_DEPTH)
        .limit_complexity(limits::MAX_COMPLEXITY)
        .limit_recursive_depth(limits::MAX_RECURSIVE_DEPTH)
        .limit_directives(limits::MAX_DIRECTIVES);
    if shape_extension {
        builder = builder.extension(shape_limits(introspection));
    }
    if introspection {
        builder
    } else {
        builder.disable_introspection()
    }
}

/// The schema served over `service`, with every limit built in; `introspection: false`
/// refuses `__schema`/`__type`.
pub fn schema(service: Arc<Service>, introspection: bool) -> CallRecordingSchema {
    builder(introspection, true).data(service).finish()
}

/// The schema's SDL, as kept in `schema.graphql`.
pub fn sdl() -> String {
    builder(true, true).finish().sdl()
}

#[derive(Clone)]
struct GraphqlState {
    /// For `POST /graphql`, whose handler applies the shape limits itself; counting
    /// operations.
    schema: Metered,
    limits: ShapeLimits,
    /// For the WebSocket, with the shape limits built in; counting operations.
    ws_schema: Metered,
    answers: Arc<Answers>,
    service: Arc<Service>,
    /// The largest WebSocket message, as for request bodies.
    message_limit: usize,
    /// Ends the WebSockets, with a close frame, when the server stops.
    draining: Draining,
}

/// The GraphQL routes, to be merged into the application's router.
pub fn routes<S>(service: Arc<Service>, options: &HttpOptions) -> Router<S> {
    let introspection = options.graphql_introspection;
    let state = GraphqlState {
        schema: Metered(builder(introspection, false).data(service.clone()).finish()),
        limits: shape_limits(introspection),
        ws_schema: Metered(schema(service.clone(), introspection)),
        answers: Arc::default(),
        service,
        message_limit: options.body_limit,
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
    let batch = match parsed {
        Ok(batch) => batch,
        Err(e) => {
            return refused_domain(Error::invalid_body(format!(
                "the request body is not a GraphQL request: {e}"
            )));
        }
    };
    if let BatchRequest::Batch(operations) = &batch
        && (operations.is_empty() || operations.len() > limits::MAX_BATCH)
    {
        return refused(
            StatusCode::BAD_REQUEST,
            GqlError::transport(
                codes::BATCH_TOO_LARGE,
                format!(
                    "a batch must hold 1 to {} operations (got {})",
                    limits::MAX_BATCH,
                    operations.len()
                ),
            ),
        );
    }
    let credentials = Credentials::from_headers(&headers);
    let requests = match batch {
        BatchRequest::Single(request) => return answer(&state, credentials, request).await,
        BatchRequest::Batch(requests) => requests,
    };
    let run = |request: async_graphql::Request| {
        let (schema, limits) = (&state.schema, state.limits);
        let mut request = request.data(credentials.clone());
        async move {
            if let Err(e) = limits.admit(&mut request) {
                return async_graphql::Response::from_errors(vec![e]);
            }
            let mut response = schema.execute(request).await;
            limits::tag_errors(&mut response);
            response
        }
    };
    let responses = futures_util::future::join_all(requests.into_iter().map(run)).await;
    GraphQLResponse::from(BatchResponse::Batch(responses)).into_response()
}

/// One operation: from the answers kept since the last commit when it is a query asked
/// before by the same caller, else executed (and, if a query, kept).
async fn answer(
    state: &GraphqlState,
    credentials: Credentials,
    request: async_graphql::Request,
) -> Response {
    let who = credentials.principal(&state.service).ok();
    let question = who.and_then(|who| Question::of(&request, who));
    let commit = state.service.store().last_ticket();
    if let Some(question) = &question
        && let Some((bytes, ok)) = state.answers.get(commit, question)
    {
        metrics::graphql_operation(metered::operation_label(&request), ok);
        return bytes_answer(bytes);
    }
    let volatile = Arc::new(answers::Volatile::default());
    let mut request = request.data(credentials).data(volatile.clone());
    if let Err(e) = state.limits.admit(&mut request) {
        return json_answer(&async_graphql::Response::from_errors(vec![e])).0;
    }
    let question = question.filter(|_| answers::read_only(&mut request));
    let mut response = state.schema.execute(request).await;
    limits::tag_errors(&mut response);
    let (http, bytes) = json_answer(&response);
    if let (Some(question), Some(bytes), false) = (question, bytes, volatile.marked()) {
        state
            .answers
            .put(commit, question, (bytes, response.is_ok()));
    }
    http
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn bytes_answer(bytes: Bytes) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, GRAPHQL_RESPONSE)],
        bytes,
    )
        .into_response()
}

fn json_answer(response: &async_graphql::Response) -> (Response, Option<Bytes>) {
    match serde_json::to_vec(response) {
        Ok(bytes) => {
            let bytes = Bytes::from(bytes);
            (bytes_answer(bytes.clone()), Some(bytes))
        }
        Err(e) => (
            refused_domain(Error::Internal(format!("rendering the answer failed: {e}"))),
            None,
        ),
    }
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
        ws_schema: schema,
        service,
        message_limit,
        draining,
        ..
    } = state;
    // Taken now, not once upgraded, so that a stop in between still waits for this socket.
    let running = draining.track();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(message_limit)
        .max_frame_size(message_limit)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            let stream = first_within(stream, INIT_TIMEOUT);
            let (to_client, outgoing) = mpsc::channel(OUTGOING_BUFFER);
            let graphql = GraphQLWebSocket::new_with_pair(
                PollSender::new(to_client),
                stream,
                schema,
                protocol,
            )
            .on_connection_init(move |payload| connection_init(service, from_header, payload))
            .serve();
            until_stopped(graphql, outgoing, sink, &draining).await;
            drop(running);
        })
        .into_response()
}

/// Messages the GraphQL side of a WebSocket may get ahead of the socket.
const OUTGOING_BUFFER: usize = 16;

/// Said in the close frame sent to every WebSocket when the server stops.
pub const GOING_AWAY: &str = "the server is stopping";

/// Runs the GraphQL side of a WebSocket, passing what it sends on to `sink`, until it ends or
/// the server stops; on stop, sends a close frame (1001 "going away") and ends.
async fn until_stopped(
    graphql: impl Future<Output = ()>,
    mut outgoing: mpsc::Receiver<Message>,
    mut sink: impl Sink<Message> + Unpin,
    draining: &Draining,
) {
    let stopping = draining.stopping();
    tokio::pin!(graphql, stopping);
    let mut graphql_ended = false;
    loop {
        tokio::select! {
            biased;
            () = &mut stopping => {
                let close = Message::Close(Some(CloseFrame {
                    code: close_code::AWAY,
                    reason: GOING_AWAY.into(),
                }));
                if sink.send(close).await.is_ok() {
                    let _ = sink.close().await;
                }
                return;
            }
            message = outgoing.recv() => match message {
                Some(message) => {
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
                // The GraphQL side ended and everything it sent is passed on.
                None => return,
            },
            () = &mut graphql, if !graphql_ended => graphql_ended = true,
        }
    }
}

/// How long a new WebSocket connection may stay silent before its `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// `stream`, ended early unless its first item arrives within `limit`: a connection that never
/// sends `connection_init` is closed instead of being held open.
pub fn first_within<S>(mut stream: S, limit: Duration) -> impl Stream<Item = S::Item>
where
    S: Stream + Unpin,
{
    let first = async move {
        match tokio::time::timeout(limit, stream.next()).await {
            Ok(Some(item)) => Some((item, stream)),
            Ok(None) => None,
            Err(_) => {
                tracing::info!("closing a GraphQL WebSocket that sent nothing in time");
                None
            }
        }
    };
    futures_util::stream::once(first).flat_map(|first| match first {
        Some((item, rest)) => futures_util::stream::once(std::future::ready(item))
            .chain(rest)
            .left_stream(),
        None => futures_util::stream::empty().right_stream(),
    })
}

/// Accepts the connection only with valid credentials, which then travel with every
/// operation of the connection (and are checked again by each).
async fn connection_init(
    service: Arc<Service>,
    from_header: Credentials,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let credentials = Credentials::from_init_payload(&payload).unwrap_or(from_header);
    if let Err(e) = credentials.principal(&service) {
        return Err(async_graphql::Error::new(format!(
            "{}: {}",
            e.code().name,
            e.public_message()
        )));
    }
    let mut data = Data::default();
    data.insert(credentials);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_ends_after_the_init_timeout() {
        let silent = futures_util::stream::pending::<u8>();
        let ended: Vec<u8> = first_within(silent, INIT_TIMEOUT).collect().await;
        assert!(ended.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_speaks_in_time_is_passed_through() {
        let items = futures_util::stream::iter([1u8, 2, 3]);
        let all: Vec<u8> = first_within(items, INIT_TIMEOUT).collect().await;
        assert_eq!(all, [1, 2, 3]);
        // Only the first item is timed: later silence is fine.
        let late = futures_util::stream::iter([1u8]).chain(futures_util::stream::once(async {
            tokio::time::sleep(INIT_TIMEOUT * 3).await;
            2u8
        }));
        let all: Vec<u8> = first_within(Box::pin(late), INIT_TIMEOUT).collect().await;
        assert_eq!(all, [1, 2]);
    }
}
