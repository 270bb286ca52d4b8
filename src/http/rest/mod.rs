//! The REST compatibility layer: parse, call the service, render.

mod org;
mod platforms;
mod properties;
mod session;
mod users;

use axum::Router;
use axum::routing::{MethodRouter, get, post};

use super::AppState;

const CALL_RECORDING: &str = "/api/v1/system/services/call_recording";

/// Routes `path` (which ends with `/`) and the same path without the slash.
fn both(router: Router<AppState>, path: &str, methods: MethodRouter<AppState>) -> Router<AppState> {
    router
        .route(path, methods.clone())
        .route(path.trim_end_matches('/'), methods)
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    let platforms = format!("{CALL_RECORDING}/platforms/");
    r = both(r, &platforms, get(platforms::list).post(platforms::add));
    r = both(
        r,
        &format!("{platforms}{{name}}/"),
        get(platforms::get)
            .put(platforms::modify)
            .delete(platforms::delete),
    );
    r = both(
        r,
        &format!("{platforms}{{name}}/usage/"),
        get(platforms::usage),
    );
    r = both(
        r,
        &format!("{CALL_RECORDING}/properties/"),
        get(properties::get).put(properties::modify),
    );
    r = both(
        r,
        "/api/v1/tenants/",
        get(org::list_tenants).post(org::add_tenant),
    );
    r = both(
        r,
        "/api/v1/tenants/{tenant_id}/",
        get(org::get_tenant).delete(org::delete_tenant),
    );
    r = both(
        r,
        "/api/v1/tenants/{tenant_id}/groups/",
        get(org::list_groups).post(org::add_group),
    );
    let group = "/api/v1/tenants/{tenant_id}/groups/{group_id}/";
    r = both(r, group, get(org::get_group).delete(org::delete_group));
    r = both(
        r,
        &format!("{group}services/call_recording/"),
        get(org::get_platform).put(org::set_platform),
    );
    r = both(r, "/api/v1/login/", post(session::login));
    r = both(r, "/api/v1/auth/access_token/", get(session::access_token));
    r = both(r, "/api/v1/logout/", post(session::logout));
    r = both(r, "/api/v1/local/users/", get(users::list).post(users::add));
    r = both(
        r,
        "/api/v1/local/users/{username}/",
        axum::routing::delete(users::delete),
    );
    r
}
