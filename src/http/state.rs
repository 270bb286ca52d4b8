//! What every REST and operations handler is given: the service, and what the HTTP layer
//! keeps beside it.

use std::sync::Arc;

use super::HttpOptions;
use super::rest::RenderedList;
use crate::service::Service;

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// When set, `/metrics` wants it as a bearer token.
    pub metrics_token: Option<Arc<str>>,
    /// The platform list as last rendered for REST.
    pub rendered_list: Arc<RenderedList>,
}

impl AppState {
    pub fn new(service: Arc<Service>, options: &HttpOptions) -> AppState {
        AppState {
            service,
            metrics_token: options.metrics_token.as_deref().map(Arc::from),
            rendered_list: Arc::default(),
        }
    }
}
