//! Queries: parse, call the service, render.

use async_graphql::{Context, Object};

use super::context::caller;
use super::error::GqlResult;
use super::types::{CallRecordingPlatform, CallRecordingPlatformList, CallRecordingProperties, Me};

#[derive(Default)]
pub struct QueryRoot;

/// Reads. Every field needs `Authorization: Bearer <access_token>`.
#[Object(name = "Query")]
impl QueryRoot {
    /// Every platform and the system default (Group Admin or above).
    async fn call_recording_platforms(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<CallRecordingPlatformList> {
        let (service, who) = caller(ctx)?;
        Ok(CallRecordingPlatformList(service.platforms(&who)?))
    }

    /// One platform, or null when there is none of that name (System Admin).
    async fn call_recording_platform(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> GqlResult<Option<CallRecordingPlatform>> {
        let (service, who) = caller(ctx)?;
        Ok(service.platform(&who, &name)?.map(CallRecordingPlatform))
    }

    /// The system-wide properties (System Admin).
    async fn call_recording_properties(
        &self,
        ctx: &Context<'_>,
    ) -> GqlResult<CallRecordingProperties> {
        let (service, who) = caller(ctx)?;
        Ok(CallRecordingProperties(service.properties(&who)?))
    }

    /// The caller, as its access token identifies it.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Me> {
        let (_, who) = caller(ctx)?;
        Ok(Me(who))
    }
}
