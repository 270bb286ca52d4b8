//! `callRecordingEvents`: every committed change, in commit order, once it is on disk, after
//! a first `CallRecordingSubscriptionStarted` message telling the client the stream is live.
//!
//! Only System Admins may subscribe (the stream carries every platform, the properties and
//! every group's assignment). The caller's credentials are checked again before each event is
//! delivered: when the access token expires or the session ends, the stream ends with an
//! UNAUTHENTICATED error, and the client resubscribes with a fresh token.
//!
//! A subscriber that falls more than the service's event buffer behind has lost events. Its
//! stream then ends with an `EVENTS_LOST` error (and a logged warning) instead of silently
//! skipping: a dashboard must refetch its state and subscribe again to be correct.

use async_graphql::{Context, Subscription};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

use super::context::{credentials, service};
use super::error::{GqlError, GqlResult};
use super::types::{CallRecordingEvent, CallRecordingSubscriptionStarted};
use crate::error::Error;
use crate::http::metrics::ActiveSubscription;
use crate::service::{Event, ReachabilityChange};

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
    ) -> Result<impl Stream<Item = GqlResult<CallRecordingEvent>> + use<>, GqlError> {
        let service = service(ctx)?.clone();
        let credentials = credentials(ctx);
        let who = credentials.principal(&service)?;
        let receiver = service.watch(&who)?;
        let reachability = service.watch_reachability(&who)?;
        let still_allowed = move || {
            credentials
                .principal(&service)
                .and_then(|who| service.may_watch(&who))
        };
        let active = ActiveSubscription::start();
        Ok(
            events_with_reachability(receiver, reachability, still_allowed).inspect(move |_| {
                let _ = &active;
            }),
        )
    }
}

/// What the subscription passes on, from either source.
enum Incoming {
    Commit(Event),
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
/// after the first error (lost events, or the caller no longer allowed).
pub fn events(
    receiver: broadcast::Receiver<Event>,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    deliver(incoming(receiver, Incoming::Commit), still_allowed)
}

/// As [`events`], with the reachability changes of `reachability` merged in as they come.
pub fn events_with_reachability(
    receiver: broadcast::Receiver<Event>,
    reachability: broadcast::Receiver<ReachabilityChange>,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    let merged = futures_util::stream::select(
        incoming(receiver, Incoming::Commit),
        incoming(reachability, Incoming::Reachability),
    );
    deliver(merged, still_allowed)
}

fn deliver(
    incoming: impl Stream<Item = Incoming>,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    let started = futures_util::stream::once(futures_util::future::ready(Ok(
        CallRecordingEvent::SubscriptionStarted(CallRecordingSubscriptionStarted { live: true }),
    )));
    let still_allowed = std::sync::Arc::new(still_allowed);
    // The source is dropped after the first error, so the stream ends right after it.
    let changes = futures_util::stream::unfold(Some(Box::pin(incoming)), move |source| {
        let still_allowed = still_allowed.clone();
        async move {
            let mut source = source?;
            let delivered = match source.next().await? {
                Incoming::Lost(missed) => {
                    tracing::warn!(missed, "an event subscriber fell behind; ending its stream");
                    Err(GqlError::events_lost(missed))
                }
                Incoming::Commit(event) => still_allowed()
                    .map(|()| event.into())
                    .map_err(GqlError::from),
                Incoming::Reachability(change) => still_allowed()
                    .map(|()| CallRecordingEvent::ReachabilityChanged(change.into()))
                    .map_err(GqlError::from),
            };
            let next = delivered.is_ok().then_some(source);
            Some((delivered, next))
        }
    });
    started.chain(changes)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::model::Properties;

    fn modified() -> Event {
        Event::PropertiesModified {
            properties: Properties::default(),
        }
    }

    #[tokio::test]
    async fn starts_then_delivers_and_ends_when_events_were_lost() {
        let (tx, rx) = broadcast::channel(2);
        let stream = events(rx, || Ok(()));
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
        for _ in 0..5 {
            tx.send(modified()).unwrap();
        }
        let Some(Err(lost)) = stream.next().await else {
            panic!("lost events expected");
        };
        assert!(lost.message().contains("3 events were dropped"), "{lost:?}");
        assert!(
            stream.next().await.is_none(),
            "the stream ends after the error"
        );
    }

    #[tokio::test]
    async fn ends_when_the_caller_is_no_longer_allowed() {
        let (tx, rx) = broadcast::channel(4);
        let stream = events(rx, || {
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
        let (commits, commit_rx) = broadcast::channel(4);
        let (changes, change_rx) = broadcast::channel(4);
        let stream = events_with_reachability(commit_rx, change_rx, || Ok(()));
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

        let (_commits, commit_rx) = broadcast::channel::<Event>(4);
        let (changes, change_rx) = broadcast::channel(4);
        let refused = events_with_reachability(commit_rx, change_rx, || {
            Err(Error::Unauthenticated("the session has ended".into()))
        });
        futures_util::pin_mut!(refused);
        assert!(refused.next().await.expect("started").is_ok());
        changes.send(went_down()).unwrap();
        assert!(matches!(refused.next().await, Some(Err(_))));
        assert!(refused.next().await.is_none());
    }

    #[tokio::test]
    async fn ends_when_the_service_goes_away() {
        let (tx, rx) = broadcast::channel(4);
        let stream = events(rx, || Ok(()));
        futures_util::pin_mut!(stream);
        assert!(stream.next().await.expect("started").is_ok());
        drop(tx);
        assert!(stream.next().await.is_none());
    }
}
