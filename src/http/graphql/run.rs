//! The one path every GraphQL request takes, whether it came as `POST /graphql` (alone or in a
//! batch) or over the WebSocket: parse once; refuse it when it is over a shape limit, asks
//! for introspection it may not have, or is over the complexity budget (a batch counted as a
//! whole); answer from the kept answers or execute; refuse an answer over the byte cap; count
//! it under a bounded operation label taken from the parsed document.
//!
//! Every check runs before `execute` on the schema, which has no extension: an extension
//! would route every field through async-graphql's extension chain, a large slowdown for big
//! lists. The WebSocket runs operations through the same [`Runner`] as an [`Executor`].

use std::any::TypeId;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Request, Response, ServerError};
use axum::body::Bytes;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};

use super::answers::{self, Answers, Claim, Lookup, Question, Waiting};
use super::context::Credentials;
use super::cost::{self, Sizes};
use super::error::{GqlError, codes};
use super::labels::{self, Labels};
use super::limits::{self, ShapeLimits};
use super::plan::{self, Plan, Plans};
use super::{CallRecordingSchema, GraphqlOptions};
use crate::config::Introspection;
use crate::error::Error;
use crate::http::metrics;
use crate::model::Principal;
use crate::service::Service;
use crate::store::Sequence;

pub struct Runner {
    schema: CallRecordingSchema,
    service: Arc<Service>,
    options: GraphqlOptions,
    shape: ShapeLimits,
    answers: Answers,
    labels: Labels,
    plans: Plans,
    /// The lists' lengths for the complexity count, at the last position they were read:
    /// the service's own are read under the store's read view, a thread hand-off per request.
    sizes: Mutex<Option<(Sequence, bool, Arc<Sizes>)>>,
    /// Subscriptions open on the whole server.
    subscriptions: Arc<AtomicUsize>,
}

/// The subscriptions open on one WebSocket, kept in the connection's data.
#[derive(Default, Clone)]
pub struct SocketSubscriptions(Arc<AtomicUsize>);

/// The operation name a label is made of (see [`labels::selected`]).
type LabelName = Option<Option<String>>;

/// A request that passed the limits, parsed.
struct Admitted {
    request: Request,
    name: LabelName,
    kind: OperationType,
    cost: u64,
    /// Its document's plan, kept since async-graphql answered it: the request is not parsed.
    plan: Option<Arc<Plan>>,
    /// What its plan is kept under, for a query of an authenticated caller.
    plan_key: Option<String>,
}

/// A request refused before it ran.
struct Refused {
    name: LabelName,
    error: ServerError,
}

/// One operation of a POST, as it goes through [`Runner::post`].
enum Step<'a> {
    Kept(Bytes),
    Admitted(Box<Admitted>, Asked<'a>),
    Refused(Refused),
}

/// What the kept answers said about an operation that is not kept yet.
enum Asked<'a> {
    /// Not a question that is kept (no caller).
    Alone,
    /// The first to ask it at this commit: its answer is for the others too.
    Claimed(Claim<'a>),
    /// Another request runs it: its answer is this one's.
    Waiting(Waiting),
}

impl Runner {
    pub fn new(
        schema: CallRecordingSchema,
        service: Arc<Service>,
        options: GraphqlOptions,
    ) -> Self {
        Runner {
            schema,
            service,
            answers: Answers::new(options.answer_cache_bytes),
            options,
            shape: ShapeLimits::default(),
            labels: Labels::default(),
            plans: Plans::new(),
            sizes: Mutex::default(),
            subscriptions: Arc::default(),
        }
    }

    /// Parses `request` and checks it against every limit but the byte cap.
    fn admit(
        &self,
        mut request: Request,
        credentials: &Credentials,
    ) -> Result<Admitted, Box<Refused>> {
        let refused = |name: LabelName, error: ServerError| Box::new(Refused { name, error });
        let operation_name = request.operation_name.clone();
        let document = match self.shape.admit(&mut request) {
            Ok(document) => document,
            Err(error) => return Err(refused(None, error)),
        };
        let selected = labels::selected(document, operation_name.as_deref());
        let name: LabelName = selected.map(|(name, _)| name.map(str::to_owned));
        let kind = selected.map_or(OperationType::Query, |(_, kind)| kind);
        if limits::introspects(document) {
            let allowed = match self.options.introspection {
                Introspection::True => Ok(()),
                Introspection::False => Err(GqlError::transport(
                    codes::INTROSPECTION_DISABLED,
                    "introspection is disabled on this server",
                )),
                Introspection::Authenticated => credentials
                    .principal(&self.service)
                    .map(drop)
                    .map_err(GqlError::from),
            };
            if let Err(e) = allowed {
                return Err(refused(name, e.into_server_error()));
            }
        }
        let cost = cost::cost(document, |with_groups| self.list_sizes(with_groups))
            .map_err(|e| refused(name.clone(), GqlError::from(e).into_server_error()))?;
        if cost > self.options.max_complexity {
            return Err(refused(name, self.too_complex(cost)));
        }
        Ok(Admitted {
            request,
            name,
            kind,
            cost,
            plan: None,
            plan_key: None,
        })
    }

    /// Checks a request whose document has a plan against the complexity budget, on the
    /// document kept with the plan: the same tokens passed every other check when the plan
    /// was made, and those checks depend on the document alone.
    fn admit_planned(&self, request: Request, plan: Arc<Plan>) -> Result<Admitted, Box<Refused>> {
        let name = plan.label.clone();
        let refused = |name: LabelName, error: ServerError| Box::new(Refused { name, error });
        let cost = cost::cost(&plan.document, |with_groups| self.list_sizes(with_groups))
            .map_err(|e| refused(name.clone(), GqlError::from(e).into_server_error()))?;
        if cost > self.options.max_complexity {
            return Err(refused(name, self.too_complex(cost)));
        }
        Ok(Admitted {
            request,
            name,
            kind: OperationType::Query,
            cost,
            plan: Some(plan),
            plan_key: None,
        })
    }

    /// The lists' lengths now, read from the service once per position. A commit landing
    /// while they are read may leave them one commit behind the position they are kept
    /// under: they bound the work of a query, and one commit changes them by one item.
    fn list_sizes(&self, with_groups: bool) -> Result<Arc<Sizes>, Error> {
        let position = self.service.position();
        let kept = || self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, has_groups, sizes)) = &*kept()
            && *at == position
            && (*has_groups || !with_groups)
        {
            return Ok(sizes.clone());
        }
        let sizes = self.service.list_sizes(with_groups)?;
        *kept() = Some((position, with_groups, sizes.clone()));
        Ok(sizes)
    }

    fn too_complex(&self, cost: u64) -> ServerError {
        GqlError::transport(
            codes::QUERY_TOO_LARGE,
            format!(
                "the request's complexity is {cost} (lists counted by their length); at most {} \
                 is allowed",
                self.options.max_complexity
            ),
        )
        .into_server_error()
    }

    fn too_large(&self, bytes: usize) -> Response {
        Response::from_errors(vec![
            GqlError::transport(
                codes::RESPONSE_TOO_LARGE,
                format!(
                    "the answer would take {bytes} bytes or more; at most {} are allowed: ask \
                     for fewer fields or items",
                    self.options.max_response_bytes
                ),
            )
            .into_server_error(),
        ])
    }

    /// Counts an operation. Only a success of an authenticated caller may make its name a
    /// label, so that callers without a token cannot fill the set.
    fn count(&self, name: Option<Option<&str>>, ok: bool, authenticated: bool) -> Arc<str> {
        let label: Arc<str> = self.labels.label(name, ok && authenticated).into();
        metrics::graphql_operation(label.to_string(), ok);
        label
    }

    /// Runs the operations of one `POST /graphql` (one, or a batch) and answers each as JSON.
    /// The complexity budget and the byte cap apply to all of them together.
    pub async fn post(&self, requests: Vec<Request>, credentials: Credentials) -> Vec<Bytes> {
        let who = credentials.principal(&self.service).ok();
        let commit = self.service.position();
        let mut steps: Vec<Step> = requests
            .into_iter()
            .map(|request| {
                let question = who.clone().and_then(|who| Question::of(&request, who));
                let asked = match question.map(|q| self.answers.ask(commit, &q)) {
                    None => Asked::Alone,
                    Some(Lookup::Kept((bytes, ok, label))) => {
                        metrics::graphql_operation(label.to_string(), ok);
                        metrics::graphql_answer(metrics::AnswerSource::Kept);
                        return Step::Kept(bytes);
                    }
                    Some(Lookup::Run(claim)) => Asked::Claimed(claim),
                    Some(Lookup::Wait(waiting)) => Asked::Waiting(waiting),
                };
                let plan_key = who.as_ref().and_then(|_| plan::key(&request));
                let admitted = match plan_key.as_deref().and_then(|key| self.plans.get(key)) {
                    Some(plan) => self.admit_planned(request, plan),
                    None => self.admit(request, &credentials).map(|mut admitted| {
                        admitted.plan_key = plan_key;
                        admitted
                    }),
                };
                match admitted {
                    Ok(admitted) => Step::Admitted(Box::new(admitted), asked),
                    Err(refused) => Step::Refused(*refused),
                }
            })
            .collect();
        let total = steps
            .iter()
            .map(|step| match step {
                Step::Admitted(admitted, _) => admitted.cost,
                _ => 0,
            })
            .fold(0, u64::saturating_add);
        if total > self.options.max_complexity {
            for step in &mut steps {
                if let Step::Admitted(admitted, _) = step {
                    *step = Step::Refused(Refused {
                        name: admitted.name.take(),
                        error: self.too_complex(total),
                    });
                }
            }
        }
        let answers = futures_util::future::join_all(
            steps
                .into_iter()
                .map(|step| self.answer(step, &credentials, who.as_ref())),
        )
        .await;
        let mut used: usize = 0;
        answers
            .into_iter()
            .map(|bytes| {
                let with_this = used.saturating_add(bytes.len());
                if with_this > self.options.max_response_bytes {
                    render(&self.too_large(with_this))
                } else {
                    used = with_this;
                    bytes
                }
            })
            .collect()
    }

    async fn answer(
        &self,
        step: Step<'_>,
        credentials: &Credentials,
        who: Option<&Principal>,
    ) -> Bytes {
        let authenticated = who.is_some();
        let (admitted, asked) = match step {
            Step::Kept(bytes) => return bytes,
            Step::Refused(Refused { name, error }) => {
                self.count(name.as_ref().map(Option::as_deref), false, false);
                return render(&Response::from_errors(vec![error]));
            }
            Step::Admitted(admitted, asked) => (*admitted, asked),
        };
        let Admitted {
            mut request,
            name,
            kind,
            plan,
            plan_key,
            ..
        } = admitted;
        let claim = match asked {
            Asked::Alone => None,
            // Only queries are kept: a claim on anything else is given up at once.
            Asked::Claimed(claim) => (kind == OperationType::Query).then_some(claim),
            Asked::Waiting(waiting) => {
                if let Some((bytes, ok, label)) = waiting.answer().await {
                    metrics::graphql_operation(label.to_string(), ok);
                    metrics::graphql_answer(metrics::AnswerSource::Shared);
                    return bytes;
                }
                None
            }
        };
        // A query of an authenticated caller over plain data: from its plan when the same
        // document was answered before, else planned now and kept once async-graphql has
        // answered it without an error.
        let mut planned = None;
        if let Some(plan) = plan {
            if let Some(who) = who
                && let Some(answer) = plan::answer(&plan, &self.service, who)
            {
                metrics::graphql_answer(metrics::AnswerSource::Planned);
                let label = self.count(name.as_ref().map(Option::as_deref), true, true);
                let bytes = answers::fitted(answer);
                if let Some(claim) = claim
                    && bytes.len() <= self.options.max_response_bytes
                {
                    claim.keep((bytes.clone(), true, label));
                }
                return bytes;
            }
            // A resolver refused: async-graphql runs it (parsing it) and says why.
        } else if kind == OperationType::Query
            && let Some(key) = plan_key
        {
            // The document is borrowed from the request, mutably: its other parts are lent
            // to the planner meanwhile.
            let variables = std::mem::take(&mut request.variables);
            let operation = request.operation_name.take();
            if let Ok(document) = request.parsed_query() {
                planned = plan::plan(document, operation.as_deref(), &variables, name.clone())
                    .map(|plan| (key, plan));
            }
            request.variables = variables;
            request.operation_name = operation;
        }
        // Resolvers whose answer can change without a commit (reachability) mark it, so that
        // it is not kept.
        let volatile = Arc::new(answers::Volatile::default());
        let request = request.data(credentials.clone()).data(volatile.clone());
        let mut response = self.schema.execute(request).await;
        metrics::graphql_answer(metrics::AnswerSource::Executed);
        if response.errors.is_empty()
            && let Some((key, plan)) = planned
        {
            self.plans.put(key, plan);
        }
        limits::tag_errors(&mut response);
        let ok = response.is_ok();
        let label = self.count(name.as_ref().map(Option::as_deref), ok, authenticated);
        let bytes = render(&response);
        if let Some(claim) = claim
            && bytes.len() <= self.options.max_response_bytes
            && !volatile.marked()
        {
            claim.keep((bytes.clone(), ok, label));
        }
        bytes
    }

    /// One operation over the WebSocket, with the connection's data (its credentials and its
    /// subscription count).
    fn stream(self: Arc<Self>, request: Request, data: Arc<Data>) -> BoxStream<'static, Response> {
        let credentials = data_of::<Credentials>(&data).unwrap_or(Credentials::Missing);
        let admitted = match self.admit(request, &credentials) {
            Ok(admitted) => admitted,
            Err(refused) => {
                let Refused { name, error } = *refused;
                self.count(name.as_ref().map(Option::as_deref), false, false);
                return stream::once(async { Response::from_errors(vec![error]) }).boxed();
            }
        };
        let slot = if admitted.kind == OperationType::Subscription {
            match self.subscription_slot(data_of::<SocketSubscriptions>(&data)) {
                Ok(slot) => Some(slot),
                Err(error) => {
                    self.count(admitted.name.as_ref().map(Option::as_deref), false, false);
                    return stream::once(async { Response::from_errors(vec![error]) }).boxed();
                }
            }
        } else {
            None
        };
        let mut name = Some(admitted.name);
        let runner = self.clone();
        self.schema
            .execute_stream_with_session_data(admitted.request, data)
            .map(move |mut response| {
                let _ = &slot;
                limits::tag_errors(&mut response);
                let bytes = rendered_size(&response);
                if bytes > runner.options.max_response_bytes {
                    response = runner.too_large(bytes);
                }
                // A stream is counted once, by its first answer: an error there means the
                // operation was refused.
                if let Some(name) = name.take() {
                    // The connection was accepted with valid credentials.
                    let ok = response.is_ok();
                    runner.count(name.as_ref().map(Option::as_deref), ok, true);
                }
                response
            })
            .boxed()
    }

    /// A place for one more subscription, on the socket and on the server, or why not.
    fn subscription_slot(
        &self,
        socket: Option<SocketSubscriptions>,
    ) -> Result<SubscriptionSlot, ServerError> {
        let refuse = |what: &str, cap: usize| {
            GqlError::transport(
                codes::TOO_MANY_SUBSCRIPTIONS,
                format!("{what} already has {cap} subscriptions open; end one first"),
            )
            .into_server_error()
        };
        let socket = socket.unwrap_or_default();
        if !take(&socket.0, self.options.subscriptions_per_socket) {
            return Err(refuse(
                "this connection",
                self.options.subscriptions_per_socket,
            ));
        }
        if !take(&self.subscriptions, self.options.max_subscriptions) {
            socket.0.fetch_sub(1, Ordering::Relaxed);
            return Err(refuse("the server", self.options.max_subscriptions));
        }
        Ok(SubscriptionSlot {
            socket: socket.0,
            total: self.subscriptions.clone(),
        })
    }
}

/// One more on `counter` unless it is at `cap`.
fn take(counter: &AtomicUsize, cap: usize) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < cap).then_some(n + 1)
        })
        .is_ok()
}

/// Held by an open subscription's stream; gives its place back when the stream is dropped.
struct SubscriptionSlot {
    socket: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        self.socket.fetch_sub(1, Ordering::Relaxed);
        self.total.fetch_sub(1, Ordering::Relaxed);
    }
}

fn data_of<T: Clone + 'static>(data: &Data) -> Option<T> {
    data.get(&TypeId::of::<T>())
        .and_then(|d| d.downcast_ref::<T>())
        .cloned()
}

/// A response as JSON. Serialising a GraphQL response cannot fail (its maps have string keys).
fn render(response: &Response) -> Bytes {
    match serde_json::to_vec(response) {
        Ok(bytes) => answers::fitted(bytes),
        Err(e) => {
            let error: GqlError =
                Error::Internal(format!("rendering an answer failed: {e}")).into();
            Bytes::from(
                serde_json::to_vec(&Response::from_errors(vec![error.into_server_error()]))
                    .unwrap_or_default(),
            )
        }
    }
}

/// The length of a response as JSON, without keeping the text.
fn rendered_size(response: &Response) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, response);
    count.0
}

/// The runner as the WebSocket's executor.
#[derive(Clone)]
pub struct Run(pub Arc<Runner>);

impl Executor for Run {
    async fn execute(&self, request: Request) -> Response {
        self.0
            .clone()
            .stream(request, Arc::default())
            .next()
            .await
            .unwrap_or_default()
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.0
            .clone()
            .stream(request, session_data.unwrap_or_default())
    }
}
