//! Reachability in GraphQL: `CallRecordingPlatform.reachability` and the
//! `CallRecordingPlatformReachabilityChanged` event.

use std::sync::Arc;

use async_graphql::{Context, Enum, Object, SimpleObject};

use super::answers::Volatile;
use super::context::caller;
use super::error::GqlResult;
use crate::model::{self, reachability::millis, reachability::rfc3339};
use crate::service::ReachabilityChange;

/// Whether a platform answers SIP OPTIONS, as this gateway sees it.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "model::ReachabilityState")]
pub enum PlatformReachabilityState {
    /// The last probe was answered (any final status 200-499).
    Up,
    /// The last `--probe-failures` probes in a row failed.
    Down,
    /// Probed, but neither answered yet nor failed often enough to be down.
    Unknown,
    /// This gateway does not probe (started without `--probe-platforms`).
    NotProbed,
}

/// What this gateway saw when it last probed a platform with SIP OPTIONS. Each gateway
/// probes for itself: two gateways on one database may see different things.
pub struct PlatformReachability(pub model::Reachability);

/// What this gateway saw when it last probed a platform with SIP OPTIONS. Each gateway
/// probes for itself: two gateways on one database may see different things.
#[Object]
impl PlatformReachability {
    async fn state(&self) -> PlatformReachabilityState {
        self.0.state.into()
    }

    /// When the current state began (RFC 3339, UTC); null when not probed.
    async fn since(&self) -> Option<String> {
        self.0.since.map(rfc3339)
    }

    /// When the last probe ended (RFC 3339, UTC); null before the first.
    async fn last_checked_at(&self) -> Option<String> {
        self.0.last_checked_at.map(rfc3339)
    }

    /// The round trip of the last answered probe, in milliseconds.
    async fn last_latency_ms(&self) -> Option<f64> {
        self.0.last_latency.map(millis)
    }

    /// Failed probes since the last answer.
    async fn consecutive_failures(&self) -> u32 {
        self.0.consecutive_failures
    }

    /// Why the last probe failed (`timeout`, `connection refused`,
    /// `503 Service Unavailable`, ...); null after an answer.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
}

/// `CallRecordingPlatform.reachability` (System Admin). Its answer changes without a
/// commit, so a query that asks for it is never answered from the kept answers.
pub fn of_platform(ctx: &Context<'_>, name: &str) -> GqlResult<Option<PlatformReachability>> {
    if let Some(volatile) = ctx.data_opt::<Arc<Volatile>>() {
        volatile.mark();
    }
    let (service, who) = caller(ctx)?;
    Ok(service.reachability(&who, name)?.map(PlatformReachability))
}

/// A platform's reachability changed on this gateway. Live only: not a change anyone made,
/// so it has no place in a replay; a client fetches the current states by query.
#[derive(SimpleObject)]
pub struct CallRecordingPlatformReachabilityChanged {
    /// The platform's name.
    pub name: String,
    pub state: PlatformReachabilityState,
    pub previous: PlatformReachabilityState,
    /// When the change was seen (RFC 3339, UTC).
    pub at: String,
}

impl From<ReachabilityChange> for CallRecordingPlatformReachabilityChanged {
    fn from(c: ReachabilityChange) -> Self {
        CallRecordingPlatformReachabilityChanged {
            name: c.name,
            state: c.state.into(),
            previous: c.previous.into(),
            at: rfc3339(c.at),
        }
    }
}
