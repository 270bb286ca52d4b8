//! The REST compatibility layer: parse, call the service, render. Routes and the OpenAPI
//! document come from the same handler annotations, so neither can miss a path.

mod audit;
mod org;
mod platforms;

pub use platforms::RenderedList;
mod properties;
mod reachability;
mod session;
mod users;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::state::AppState;

/// Every REST route, with its OpenAPI operations. Paths end with `/`; the router in
/// `http::app` also accepts them without.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(platforms::list, platforms::add))
        .routes(routes!(
            platforms::get,
            platforms::modify,
            platforms::delete
        ))
        .routes(routes!(platforms::usage))
        .routes(routes!(reachability::get))
        .routes(routes!(properties::get, properties::modify))
        .routes(routes!(org::list_tenants, org::add_tenant))
        .routes(routes!(org::get_tenant, org::delete_tenant))
        .routes(routes!(org::list_groups, org::add_group))
        .routes(routes!(org::get_group, org::delete_group))
        .routes(routes!(org::get_platform, org::set_platform))
        .routes(routes!(session::login))
        .routes(routes!(session::access_token))
        .routes(routes!(session::logout))
        .routes(routes!(users::list, users::add))
        .routes(routes!(users::delete))
        .routes(routes!(audit::list))
}
