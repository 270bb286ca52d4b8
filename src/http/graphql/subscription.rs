//! `callRecordingEvents`: every committed change, in log order, once it is on disk, after
//! a first `CallRecordingSubscriptionStarted` message telling the client the stream is live.
//! With `after` (the `cursor` of an event received earlier) the stream first replays every
//! event after it from the change log, then goes on live, with no gap and no duplicate.
//!
//! Only System Admins may subscribe (the stream carries every platform, the properties and
//! every group's assignment). The caller's credentials are checked again before each event is
//! delivered, after every durable commit (a logout, a deleted user or a new password is a
//! commit) and when the access token expires: once they no longer hold, the stream ends at
//! once with an UNAUTHENTICATED error, and the client resubscribes with a fresh token.
//!
//! A subscriber that falls behind is served from the log. Only a position older than the log's
//! retention ends the stream, with an `EVENTS_LOST` error: the dashboard must then refetch
//! its state and subscribe again.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;

use crate::service::{EventStream, LoggedEvent};
use tokio::time::Instant;

use super::context::{Credentials, credentials, service};
use super::error::{GqlError, GqlResult};
use super::types::{CallRecordingEvent, CallRecordingSubscriptionStarted};
use crate::auth::TokenKind;
use crate::error::Error;
use crate::http::metrics::ActiveSubscription;
use crate::service::{ReachabilityChange, Service};
use crate::store::Sequence;

#[derive(Default)]
pub struct SubscriptionRoot;

/// Change streams, over the WebSocket at /graphql/ws.
#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every committed change to platforms, the default, properties and group assignments,
    /// and, live only, every change of a platform's reachability as this gateway sees it
    /// (System Admin).
    async fn call_recording_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Replay every event after this `cursor` (of an event received earlier) from the change log, then go on live."
        )]
        after: Option<String>,
    ) -> Result<impl Stream<Item = GqlResult<CallRecordingEvent>> + use<>, GqlError> {
        let service = service(ctx)?.clone();
        let credentials = credentials(ctx);
        let who = credentials.principal(&service)?;
        let receiver = service.watch(&who, after.as_deref())?;
        let reachability = service.watch_reachability(&who)?;
        let checks = Checks {
            commits: service.durable_commits(),
            expiry: expiry(&service, &credentials),
        };
        let still_allowed = move || {
            credentials
                .principal(&service)
                .and_then(|who| service.may_watch(&who))
        };
        let active = ActiveSubscription::start();
        let stream = events_with_reachability(receiver, reachability, checks, still_allowed);
        Ok(stream.inspect(move |_| {
            let _ = &active;
        }))
    }
}

/// When the credentials must be checked besides before each event.
pub struct Checks {
    /// Changed by every durable commit.
    pub commits: watch::Receiver<Sequence>,
    /// When the access token expires.
    pub expiry: Option<Instant>,
}

/// The instant the access token of `credentials` expires (a second after its `exp`, the
/// first whole second it is refused in).
fn expiry(service: &Service, credentials: &Credentials) -> Option<Instant> {
    let Credentials::Token(token) = credentials else {
        return None;
    };
    let exp = service.tokens().verify(token, TokenKind::Access).ok()?.exp;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = Duration::from_secs(exp.saturating_add(1)).saturating_sub(now);
    Some(Instant::now() + left)
}

/// What the subscription passes on, from either source.
enum Incoming {
    Commit(Result<LoggedEvent, Error>),
    Reachability(ReachabilityChange),
    Lost(u64),
}

/// The items of a broadcast receiver until its sender goes away.
fn incoming<T: Clone + Send + 'static>(
    receiver: broadcast::Receiver<T>,
    wrap: fn(T) -> Incoming,
) -> impl Stream<Item = Incoming> {
    futures_util::stream::unfold(receiver, move |mut receiver| async move {
        match receiver.recv().await {
            Ok(item) => Some((wrap(item), receiver)),
            Err(RecvError::Lagged(missed)) => Some((Incoming::Lost(missed), receiver)),
            Err(RecvError::Closed) => None,
        }
    })
}

/// A first `SubscriptionStarted` message (the receiver exists, so nothing committed from now on
/// is missed), then the events of `receiver`, each delivered only while `still_allowed`; ends
/// after the first error (lost events, or the caller no longer allowed, checked also after
/// each commit and at the token's expiry).
pub fn events(
    receiver: EventStream,
    checks: Checks,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    deliver(receiver.map(Incoming::Commit), checks, still_allowed)
}

/// As [`events`], with the reachability changes of `reachability` merged in as they come.
pub fn events_with_reachability(
    receiver: EventStream,
    reachability: broadcast::Receiver<ReachabilityChange>,
    checks: Checks,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    let merged = futures_util::stream::select(
        receiver.map(Incoming::Commit),
        incoming(reachability, Incoming::Reachability),
    );
    deliver(merged, checks, still_allowed)
}

fn deliver(
    incoming: impl Stream<Item = Incoming> + Send + 'static,
    checks: Checks,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    let started = futures_util::stream::once(futures_util::future::ready(Ok(
        CallRecordingEvent::SubscriptionStarted(CallRecordingSubscriptionStarted { live: true }),
    )));
    // The source is dropped after the first error, so the stream ends right after it.
    let state = Some((incoming.boxed(), checks, Arc::new(still_allowed)));
    let changes = futures_util::stream::unfold(state, |state| async move {
        let (mut source, mut checks, still_allowed) = state?;
        let mut commits_open = true;
        loop {
            let expiry = checks.expiry;
            tokio::select! {
                received = source.next() => {
                    let delivered = match received? {
                        Incoming::Lost(missed) => {
                            // Reachability changes are live only: the next probe tells again.
                            tracing::debug!(missed, "a subscriber missed reachability changes");
                            continue;
                        }
                        Incoming::Commit(event) => event
                            .and_then(|event| still_allowed().map(|()| event.into()))
                            .map_err(GqlError::from),
                        Incoming::Reachability(change) => still_allowed()
                            .map(|()| CallRecordingEvent::ReachabilityChanged(change.into()))
                            .map_err(GqlError::from),
                    };
                    let next = delivered.is_ok().then_some((source, checks, still_allowed));
                    return Some((delivered, next));
                }
                changed = checks.commits.changed(), if commits_open => {
                    commits_open = changed.is_ok();
                    if let Err(e) = still_allowed() {
                        return Some((Err(GqlError::from(e)), None));
                    }
                }
                () = tokio::time::sleep_until(expiry.unwrap_or_else(Instant::now)),
                    if expiry.is_some() =>
                {
                    if let Err(e) = still_allowed() {
                        return Some((Err(GqlError::from(e)), None));
                    }
                    // A clock that disagrees by a second: look again a second later.
                    checks.expiry = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
    });
    started.chain(changes)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::model::Properties;

    fn no_checks() -> Checks {
        Checks {
            commits: watch::channel(Sequence(0)).1,
            expiry: None,
        }
    }

    type Sender = tokio::sync::mpsc::UnboundedSender<Result<LoggedEvent, Error>>;

    fn channel() -> (Sender, EventStream) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            tx,
            Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx)),
        )
    }

    fn modified() -> Result<LoggedEvent, Error> {
        Ok(LoggedEvent {
            cursor: "1:0".into(),
            at: "2026-01-01T00:00:00.000Z".into(),
            actor: "admin".into(),
            event: crate::service::Event::PropertiesModified {
                properties: Properties::default(),
            },
        })
    }

    #[tokio::test]
    async fn starts_then_delivers_and_ends_when_events_were_lost() {
        let (tx, rx) = channel();
        let stream = events(rx, no_checks(), || Ok(()));
        futures_util::pin_mut!(stream);
        assert!(matches!(
            stream.next().await,
            Some(Ok(CallRecordingEvent::SubscriptionStarted(_)))
        ));
        tx.send(modified()).unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Ok(CallRecordingEvent::PropertiesModified(_)))
        ));
        tx.send(Err(Error::EventsLost("gone".into()))).unwrap();
        tx.send(modified()).unwrap();
        let Some(Err(lost)) = stream.next().await else {
            panic!("lost events expected");
        };
        assert_eq!(lost.message(), "gone");
        assert!(
            stream.next().await.is_none(),
            "the stream ends after the error"
        );
    }

    #[tokio::test]
    async fn ends_when_the_caller_is_no_longer_allowed() {
        let (tx, rx) = channel();
        let stream = events(rx, no_checks(), || {
            Err(Error::Unauthenticated("the session has ended".into()))
        });
        futures_util::pin_mut!(stream);
        assert!(stream.next().await.expect("started").is_ok());
        tx.send(modified()).unwrap();
        let Some(Err(e)) = stream.next().await else {
            panic!("a refusal expected");
        };
        assert_eq!(e.message(), "the session has ended");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn ends_when_the_service_goes_away() {
        let (tx, rx) = channel();
        let stream = events(rx, no_checks(), || Ok(()));
        futures_util::pin_mut!(stream);
        assert!(stream.next().await.expect("started").is_ok());
        drop(tx);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_commit_ends_the_stream_of_a_caller_no_longer_allowed() {
        let (_tx, rx) = channel();
        let (commits, watched) = watch::channel(Sequence(0));
        let allowed = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let still = allowed.clone();
        let checks = Checks {
            commits: watched,
            expiry: None,
        };
        let stream = events(rx, checks, move || {
            if still.load(std::sync::atomic::Ordering::SeqCst) {
                Ok(())
            } else {
                Err(Error::Unauthenticated("the session has ended".into()))
            }
        });
        futures_util::pin_mut!(stream);
        assert!(stream.next().await.expect("started").is_ok());
        // A commit that changes nothing for this caller: the stream goes on.
        commits.send_replace(Sequence(1));
        let pending = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
        assert!(pending.is_err(), "nothing to deliver yet");
        allowed.store(false, std::sync::atomic::Ordering::SeqCst);
        commits.send_replace(Sequence(2));
        let Some(Err(e)) = stream.next().await else {
            panic!("a refusal expected");
        };
        assert_eq!(e.message(), "the session has ended");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_expiry_ends_the_stream() {
        let (_tx, rx) = channel();
        let (_commits, watched) = watch::channel(Sequence(0));
        let expires = Instant::now() + Duration::from_secs(60);
        let checks = Checks {
            commits: watched,
            expiry: Some(expires),
        };
        let stream = events(rx, checks, move || {
            if Instant::now() < expires {
                Ok(())
            } else {
                Err(Error::Unauthenticated("the token has expired".into()))
            }
        });
        futures_util::pin_mut!(stream);
        assert!(stream.next().await.expect("started").is_ok());
        let Some(Err(e)) = stream.next().await else {
            panic!("a refusal expected");
        };
        assert_eq!(e.message(), "the token has expired");
        assert!(Instant::now() >= expires);
    }

    fn went_down() -> ReachabilityChange {
        use crate::model::ReachabilityState;
        ReachabilityChange {
            name: "A".into(),
            state: ReachabilityState::Down,
            previous: ReachabilityState::Up,
            at: std::time::SystemTime::now(),
        }
    }

    #[tokio::test]
    async fn reachability_changes_are_merged_in_and_checked_like_commits() {
        let (commits, commit_rx) = channel();
        let (changes, change_rx) = broadcast::channel(4);
        let stream = events_with_reachability(commit_rx, change_rx, no_checks(), || Ok(()));
        futures_util::pin_mut!(stream);
        assert!(stream.next().await.expect("started").is_ok());
        changes.send(went_down()).unwrap();
        let Some(Ok(CallRecordingEvent::ReachabilityChanged(changed))) = stream.next().await else {
            panic!("a reachability change expected");
        };
        assert_eq!(changed.name, "A");
        commits.send(modified()).unwrap();
        assert!(matches!(
            stream.next().await,
            Some(Ok(CallRecordingEvent::PropertiesModified(_)))
        ));

        let (_commits, commit_rx) = channel();
        let (changes, change_rx) = broadcast::channel(4);
        let refused = events_with_reachability(commit_rx, change_rx, no_checks(), || {
            Err(Error::Unauthenticated("the session has ended".into()))
        });
        futures_util::pin_mut!(refused);
        assert!(refused.next().await.expect("started").is_ok());
        changes.send(went_down()).unwrap();
        assert!(matches!(refused.next().await, Some(Err(_))));
        assert!(refused.next().await.is_none());
    }
}
