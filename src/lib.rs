//! callrec-gateway: provisioning of the system call recording service — recording platforms,
//! the system default, group usage and system properties — over GraphQL and a REST layer that
//! answers the documented `/api/v1/system/services/call_recording/...` paths.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod json;
pub mod model;
pub mod probe;
pub mod server;
pub mod service;
pub mod store;
