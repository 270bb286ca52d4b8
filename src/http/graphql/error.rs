//! How errors look in GraphQL. A domain [`Error`] becomes a GraphQL error whose
//! `extensions.code` is the error's name and `extensions.subErrorCode` its number, plus
//! `extensions.field` for a validation error: this is the only place that mapping is made.

use async_graphql::{ErrorExtensionValues, ServerError};

use crate::error::Error;

/// Codes of errors that only the GraphQL transport produces (no domain sub error code).
pub mod codes {
    /// More operations in one batch than allowed.
    pub const BATCH_TOO_LARGE: &str = "BATCH_TOO_LARGE";
    /// Over a limit: depth, complexity (lists counted by their length, a batch as a whole),
    /// directives, aliases, fields (as written or once fragments are expanded), or a
    /// fragment cycle.
    pub const QUERY_TOO_LARGE: &str = "QUERY_TOO_LARGE";
    /// An introspection query on a server started with `--graphql-introspection false`.
    /// (Without a token under the default `authenticated`, it is `UNAUTHENTICATED`.)
    pub const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";
    /// The query text is not GraphQL.
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// The query does not fit the schema (unknown field, wrong argument or variable type...).
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    /// The answer is larger than `--max-response-bytes`.
    pub const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";
    /// A subscription past the cap of one WebSocket or of the server.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
    /// A subscriber fell so far behind that events were dropped; refetch and resubscribe.
    pub const EVENTS_LOST: &str = "EVENTS_LOST";
}

/// The error type of every resolver. It deliberately does not implement `Display`, so the only
/// way from a domain [`Error`] into a GraphQL error is [`From<Error>`] below (async-graphql's
/// blanket conversion of any `Display` type would drop the extensions).
#[derive(Debug, Clone)]
pub struct GqlError(async_graphql::Error);

pub type GqlResult<T> = Result<T, GqlError>;

impl GqlError {
    /// An error of the GraphQL transport itself, with just a `code`.
    pub fn transport(code: &'static str, message: impl Into<String>) -> GqlError {
        let mut error = async_graphql::Error::new(message);
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", code);
        error.extensions = Some(extensions);
        GqlError(error)
    }

    /// The subscriber missed `missed` events.
    pub fn events_lost(missed: u64) -> GqlError {
        let mut e = GqlError::transport(
            codes::EVENTS_LOST,
            format!(
                "this subscription fell behind and {missed} events were dropped; \
                 refetch and subscribe again"
            ),
        );
        if let Some(ext) = e.0.extensions.as_mut() {
            ext.set("missed", missed);
        }
        e
    }

    /// As a [`ServerError`], for errors raised outside resolvers.
    pub fn into_server_error(self) -> ServerError {
        let mut e = ServerError::new(self.0.message, None);
        e.extensions = self.0.extensions;
        e
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }
}

/// The extensions of a domain error: `code`, `subErrorCode` and, when known, `field`.
pub fn extensions_of(e: &Error) -> ErrorExtensionValues {
    let code = e.code();
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code.name);
    extensions.set("subErrorCode", code.number);
    if let Some(field) = e.field() {
        extensions.set("field", field);
    }
    if let Some(seconds) = e.retry_after_seconds() {
        extensions.set("retryAfterSeconds", seconds);
    }
    extensions
}

impl From<Error> for GqlError {
    fn from(e: Error) -> Self {
        if let Error::Internal(cause) | Error::Unavailable(cause) = &e {
            tracing::error!(error = %cause, "GraphQL operation failed");
        }
        let mut error = async_graphql::Error::new(e.public_message());
        error.extensions = Some(extensions_of(&e));
        GqlError(error)
    }
}

impl From<GqlError> for async_graphql::Error {
    fn from(e: GqlError) -> Self {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_carry_name_number_and_field() {
        let e: async_graphql::Error =
            GqlError::from(Error::invalid("port", "port must be 1-65535")).into();
        assert_eq!(e.message, "port must be 1-65535");
        let ext = e.extensions.expect("extensions");
        assert_eq!(ext.get("code"), Some(&"INVALID_VALUE".into()));
        assert_eq!(ext.get("subErrorCode"), Some(&100.into()));
        assert_eq!(ext.get("field"), Some(&"port".into()));

        let e: async_graphql::Error = GqlError::from(Error::platform_missing()).into();
        let ext = e.extensions.expect("extensions");
        assert_eq!(ext.get("code"), Some(&"INVALID_OPERATION".into()));
        assert_eq!(ext.get("subErrorCode"), Some(&18.into()));
        assert_eq!(ext.get("field"), None);
    }

    #[test]
    fn internal_causes_stay_in_the_log() {
        let e: async_graphql::Error = GqlError::from(Error::Internal("disk on fire".into())).into();
        assert!(!e.message.contains("disk"));
    }
}
