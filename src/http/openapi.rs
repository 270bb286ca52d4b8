//! The OpenAPI 3.1 document, generated from the handlers' own annotations and types.

use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;

mod ranges;
pub(crate) mod schemas;

pub use ranges::ModelRanges;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callrec-gateway",
        description = "Provisioning of the system call recording service: the documented \
            /api/v1/system/services/call_recording paths, plus login, users and operations.",
    ),
    // Relative: the document is served by the server it describes, whatever its address.
    servers((url = "/", description = "This server")),
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

/// The operations a caller reaches without a token, by operation id; `/metrics` too unless
/// it asks for its token.
const PUBLIC: [&str; 3] = ["login", "healthz", "readyz"];

/// Says of every operation whether it takes a token: public ones get an explicit empty
/// `security`, so that no reader takes a missing one for an oversight.
pub fn mark_public(doc: &mut Document, metrics_token: bool) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let id = operation.operation_id.as_deref().unwrap_or_default();
            if PUBLIC.contains(&id) || (id == "metrics" && !metrics_token) {
                operation.security = Some(Vec::new());
            } else if id == "metrics" {
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
            }
        }
    }
}
