//! Queries: parse, call the service, render.

use async_graphql::{Context, Object};

use super::audit::AuditLogConnection;
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

    /// The change log, oldest first (System Admin): `first` (1–500, 50 when neither it nor
    /// `last` is given) entries after `after`, or the newest `last` entries before `before`;
    /// filtered by `actor`, by `platform` (entries that changed it), and by time (`since`
    /// inclusive, `until` exclusive, RFC 3339).
    #[allow(clippy::too_many_arguments)]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        actor: Option<String>,
        platform: Option<String>,
        since: Option<String>,
        until: Option<String>,
    ) -> GqlResult<AuditLogConnection> {
        let (service, who) = caller(ctx)?;
        let backward = last.is_some() || before.is_some();
        if backward && (first.is_some() || after.is_some()) {
            return Err(crate::error::Error::invalid(
                "last",
                "give either first/after or last/before, not both",
            )
            .into());
        }
        let count = if backward { last } else { first };
        let query = crate::service::AuditQuery {
            limit: count.map_or(50, |n| usize::try_from(n).unwrap_or(0)),
            after,
            before,
            newest: backward,
            actor,
            platform,
            since,
            until,
        };
        let page = service.audit_log(&who, &query).await?;
        Ok(AuditLogConnection::of(page, backward))
    }

    /// The caller, as its access token identifies it.
    async fn me(&self, ctx: &Context<'_>) -> GqlResult<Me> {
        let (_, who) = caller(ctx)?;
        Ok(Me(who))
    }
}
