//! Queries: parse, call the service, render.

use async_graphql::{Context, Object};

use super::context::caller;
use super::error::GqlResult;
use super::types::{
    CallRecordingPlatform, CallRecordingPlatformList, CallRecordingProperties, Group, Me, Tenant,
};

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

    /// Every tenant, ordered by id (System Admin).
    async fn tenants(&self, ctx: &Context<'_>) -> GqlResult<Vec<Tenant>> {
        let (service, who) = caller(ctx)?;
        Ok(service.tenants(&who)?.into_iter().map(Tenant).collect())
    }

    /// One tenant, or null when there is none with that id (System Admin, or a Tenant Admin
    /// of that tenant).
    async fn tenant(&self, ctx: &Context<'_>, tenant_id: String) -> GqlResult<Option<Tenant>> {
        let (service, who) = caller(ctx)?;
        Ok(service.tenant(&who, &tenant_id)?.map(Tenant))
    }

    /// The groups of a tenant, ordered by id; NOT_FOUND when the tenant does not exist
    /// (System Admin, or a Tenant Admin of that tenant).
    async fn groups(&self, ctx: &Context<'_>, tenant_id: String) -> GqlResult<Vec<Group>> {
        let (service, who) = caller(ctx)?;
        Ok(service
            .groups(&who, &tenant_id)?
            .into_iter()
            .map(Group)
            .collect())
    }

    /// One group, or null when there is none with these ids (System Admin, a Tenant Admin of
    /// its tenant, or a Group Admin of that group).
    async fn group(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
        group_id: String,
    ) -> GqlResult<Option<Group>> {
        let (service, who) = caller(ctx)?;
        Ok(service.group(&who, &tenant_id, &group_id)?.map(Group))
    }

    /// The caller, as its access token identifies it.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Me> {
        let (_, who) = caller(ctx)?;
        Ok(Me(who))
    }
}
