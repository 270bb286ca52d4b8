//! Mutations: parse the input into the model's request, call the service, render the result.
//! Each answers only once its change is on disk.

use async_graphql::{Context, MaybeUndefined, Object};

use super::context::caller;
use super::error::GqlResult;
use super::types::{
    AddCallRecordingPlatformInput, CallRecordingPlatform, CallRecordingProperties,
    DeleteCallRecordingPlatformPayload, DeleteGroupPayload, DeleteTenantPayload, Group,
    ModifyCallRecordingPlatformInput, ModifyCallRecordingPropertiesInput, Tenant,
};
use crate::error::Error;
use crate::model;

#[derive(Default)]
pub struct MutationRoot;

/// Changes, each answered once it is on disk.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Adds a platform; the first one becomes the system default (System Admin).
    async fn add_call_recording_platform(
        &self,
        ctx: &Context<'_>,
        input: AddCallRecordingPlatformInput,
    ) -> GqlResult<CallRecordingPlatform> {
        let (service, who) = caller(ctx)?;
        Ok(CallRecordingPlatform(
            service.add_platform(&who, input.into()).await?,
        ))
    }

    /// Changes the given fields of a platform (System Admin).
    async fn modify_call_recording_platform(
        &self,
        ctx: &Context<'_>,
        name: String,
        input: ModifyCallRecordingPlatformInput,
    ) -> GqlResult<CallRecordingPlatform> {
        let (service, who) = caller(ctx)?;
        Ok(CallRecordingPlatform(
            service.modify_platform(&who, &name, input.into()).await?,
        ))
    }

    /// Deletes a platform no group uses; the default only when it is the only platform
    /// (System Admin).
    async fn delete_call_recording_platform(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> GqlResult<DeleteCallRecordingPlatformPayload> {
        let (service, who) = caller(ctx)?;
        service.delete_platform(&who, &name).await?;
        Ok(DeleteCallRecordingPlatformPayload { name })
    }

    /// Changes the given system properties (System Admin).
    async fn modify_call_recording_properties(
        &self,
        ctx: &Context<'_>,
        input: ModifyCallRecordingPropertiesInput,
    ) -> GqlResult<CallRecordingProperties> {
        let (service, who) = caller(ctx)?;
        Ok(CallRecordingProperties(
            service.modify_properties(&who, input.into()).await?,
        ))
    }

    /// Adds a tenant (System Admin).
    async fn add_tenant(&self, ctx: &Context<'_>, tenant_id: String) -> GqlResult<Tenant> {
        let (service, who) = caller(ctx)?;
        Ok(Tenant(service.add_tenant(&who, &tenant_id).await?))
    }

    /// Deletes a tenant that has neither groups nor users (System Admin).
    async fn delete_tenant(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
    ) -> GqlResult<DeleteTenantPayload> {
        let (service, who) = caller(ctx)?;
        service.delete_tenant(&who, &tenant_id).await?;
        Ok(DeleteTenantPayload { tenant_id })
    }

    /// Adds a group, without a platform, to an existing tenant (System Admin, or a Tenant
    /// Admin of that tenant).
    async fn add_group(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
        group_id: String,
    ) -> GqlResult<Group> {
        let (service, who) = caller(ctx)?;
        Ok(Group(service.add_group(&who, &tenant_id, &group_id).await?))
    }

    /// Deletes a group that has no users, and with it its platform assignment (System Admin,
    /// or a Tenant Admin of its tenant).
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
        group_id: String,
    ) -> GqlResult<DeleteGroupPayload> {
        let (service, who) = caller(ctx)?;
        service.delete_group(&who, &tenant_id, &group_id).await?;
        Ok(DeleteGroupPayload {
            tenant_id,
            group_id,
        })
    }

    /// Assigns the platform `name` to a group, or with `name: null` clears its assignment;
    /// answers the group as it is now (System Admin, a Tenant Admin of its tenant, or a Group
    /// Admin of that group). `name` must be given: leaving it out is refused rather than
    /// read as a removal.
    async fn set_group_call_recording_platform(
        &self,
        ctx: &Context<'_>,
        tenant_id: String,
        group_id: String,
        name: MaybeUndefined<String>,
    ) -> GqlResult<Group> {
        let (service, who) = caller(ctx)?;
        let name = match name {
            MaybeUndefined::Value(name) => Some(name),
            MaybeUndefined::Null => None,
            MaybeUndefined::Undefined => return Err(Error::assignment_name_required().into()),
        };
        let platform = service
            .set_group_platform(&who, &tenant_id, &group_id, name)
            .await?;
        Ok(Group(model::Group {
            tenant_id,
            group_id,
            platform,
        }))
    }
}
