//! `callRecordingEvents`: every committed change, in commit order, once it is on disk.
//!
//! Only System Admins may subscribe (the stream carries every platform, the properties and
//! every group's assignment). The caller's credentials are checked again before each event is
//! delivered: when the access token expires or the session ends, the stream ends with an
//! UNAUTHENTICATED error, and the client resubscribes with a fresh token.
//!
//! A subscriber that falls more than the service's event buffer behind has lost events. Its
//! stream then ends with an `EVENTS_LOST` error (and a logged warning) instead of silently
//! skipping: a dashboard must refetch its state and subscribe again to be correct.

use std::sync::Arc;

use async_graphql::{Context, Subscription};
use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};

use super::context::{credentials, service};
use super::error::{GqlError, GqlResult};
use super::types::CallRecordingEvent;
use crate::error::Error;
use crate::service::Event;

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Every committed change to platforms, the default, properties and group assignments
    /// (System Admin).
    async fn call_recording_events(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = GqlResult<CallRecordingEvent>> + use<>, GqlError> {
        let service = service(ctx)?.clone();
        let credentials = credentials(ctx);
        let receiver = service.watch(&credentials.principal(&service)?)?;
        let still_allowed = move || {
            credentials
                .principal(&service)
                .and_then(|who| service.may_watch(&who))
        };
        Ok(events(receiver, still_allowed))
    }
}

/// The events of `receiver`, each delivered only while `still_allowed`; ends after the first
/// error (lost events, or the caller no longer allowed).
pub fn events(
    receiver: broadcast::Receiver<Event>,
    still_allowed: impl Fn() -> Result<(), Error> + Send + Sync + 'static,
) -> impl Stream<Item = GqlResult<CallRecordingEvent>> {
    let still_allowed = Arc::new(still_allowed);
    futures_util::stream::unfold(Some(receiver), move |state| {
        let still_allowed = still_allowed.clone();
        async move {
            let mut receiver = state?;
            match receiver.recv().await {
                Ok(event) => match still_allowed() {
                    Ok(()) => Some((Ok(event.into()), Some(receiver))),
                    Err(e) => Some((Err(GqlError::from(e)), None)),
                },
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "an event subscriber fell behind; ending its stream");
                    Some((Err(GqlError::events_lost(missed)), None))
                }
                Err(RecvError::Closed) => None,
            }
        }
    })
}
