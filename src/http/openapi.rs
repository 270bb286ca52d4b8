//! The OpenAPI 3.1 document, generated from the handlers' own annotations and types.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

mod ranges;

pub use ranges::ModelRanges;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callrec-gateway",
        description = "Provisioning of the system call recording service: the documented \
            /api/v1/system/services/call_recording paths, plus login, users and operations.",
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "platforms", description = "Call recording platforms and the system default"),
        (name = "properties", description = "System call recording properties"),
        (name = "tenants", description = "Tenants (service providers)"),
        (name = "groups", description = "Groups and their call recording platform"),
        (name = "session", description = "Login, token refresh, logout"),
        (name = "users", description = "Local users (System Admin)"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".into());
        scheme.description = Some("The access_token of POST /api/v1/login/".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
