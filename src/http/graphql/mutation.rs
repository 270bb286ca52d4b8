//! Mutations: parse the input into the model's request, call the service, render the result.
//! Each answers only once its change is on disk.

use async_graphql::{Context, Object};

use super::context::caller;
use super::error::GqlResult;
use super::types::{
    AddCallRecordingPlatformInput, CallRecordingPlatform, CallRecordingProperties,
    DeleteCallRecordingPlatformPayload, ModifyCallRecordingPlatformInput,
    ModifyCallRecordingPropertiesInput,
};

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
}
