//! The one error type. Every layer returns it; REST renders it as the documented error body
//! with an HTTP status, GraphQL as `extensions { code subErrorCode }`.

use std::fmt;

/// A sub error code with its name, as carried in the error body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub number: u32,
    pub name: &'static str,
}

impl Code {
    pub const ALREADY_EXISTS: Code = Code::new(11, "ALREADY_EXISTS");
    pub const INVALID_OPERATION: Code = Code::new(18, "INVALID_OPERATION");
    pub const NOT_DELETED: Code = Code::new(21, "NOT_DELETED");
    pub const INVALID_VALUE: Code = Code::new(100, "INVALID_VALUE");
    pub const NOT_FOUND: Code = Code::new(101, "NOT_FOUND");
    pub const UNAUTHENTICATED: Code = Code::new(102, "UNAUTHENTICATED");
    pub const FORBIDDEN: Code = Code::new(103, "FORBIDDEN");
    pub const PAYLOAD_TOO_LARGE: Code = Code::new(104, "PAYLOAD_TOO_LARGE");
    pub const METHOD_NOT_ALLOWED: Code = Code::new(105, "METHOD_NOT_ALLOWED");
    pub const TOO_MANY_ATTEMPTS: Code = Code::new(106, "TOO_MANY_ATTEMPTS");
    pub const UNAVAILABLE: Code = Code::new(107, "UNAVAILABLE");
    pub const INTERNAL: Code = Code::new(108, "INTERNAL");
    pub const REQUEST_TIMEOUT: Code = Code::new(109, "REQUEST_TIMEOUT");
    pub const EVENTS_LOST: Code = Code::new(110, "EVENTS_LOST");

    const fn new(number: u32, name: &'static str) -> Code {
        Code { number, name }
    }
}

/// What went wrong, in the words of the model. Messages are meant for the operator and never
/// carry internals; `Internal` keeps its cause for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An input value is unusable: wrong type, out of range, unknown field, bad JSON.
    #[error("{message}")]
    InvalidValue {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    AlreadyExists(String),
    /// The object does not exist (where the document answers 400/18) or the change is refused.
    #[error("{0}")]
    InvalidOperation(String),
    #[error("{0}")]
    NotDeleted(String),
    /// The object of a GET does not exist (404).
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Too many failed logins for one username; retry after this many seconds.
    #[error("too many failed logins for this user; try again in {retry_after_seconds} s")]
    TooManyAttempts { retry_after_seconds: u64 },
    /// The store cannot take writes now (disk full, I/O error); nothing was acknowledged.
    #[error("the store is unavailable; the change was not made")]
    Unavailable(String),
    /// Every password-check slot stayed taken for the whole queueing time; nothing was checked
    /// or changed. Retry after this many seconds.
    #[error("the server is busy checking passwords; try again in {retry_after_seconds} s")]
    Busy { retry_after_seconds: u64 },
    /// A subscriber's position is older than the log's retention: what came after it is gone.
    #[error("{0}")]
    EventsLost(String),
    #[error("internal error")]
    Internal(String),
    #[error("{0}")]
    Timeout(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn platform_missing_message(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("Call Recording platform '{name}' does not exist."),
        None => "Call Recording platform does not exist.".into(),
    }
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::InvalidValue {
            field: Some(field.into()),
            message: message.to_string(),
        }
    }

    pub fn invalid_body(message: impl fmt::Display) -> Error {
        Error::InvalidValue {
            field: None,
            message: message.to_string(),
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Error::InvalidValue { .. } => Code::INVALID_VALUE,
            Error::AlreadyExists(_) => Code::ALREADY_EXISTS,
            Error::InvalidOperation(_) => Code::INVALID_OPERATION,
            Error::NotDeleted(_) => Code::NOT_DELETED,
            Error::NotFound(_) => Code::NOT_FOUND,
            Error::Unauthenticated(_) => Code::UNAUTHENTICATED,
            Error::Forbidden(_) => Code::FORBIDDEN,
            Error::PayloadTooLarge(_) => Code::PAYLOAD_TOO_LARGE,
            Error::MethodNotAllowed(_) => Code::METHOD_NOT_ALLOWED,
            Error::TooManyAttempts { .. } => Code::TOO_MANY_ATTEMPTS,
            Error::Unavailable(_) | Error::Busy { .. } => Code::UNAVAILABLE,
            Error::Internal(_) => Code::INTERNAL,
            Error::Timeout(_) => Code::REQUEST_TIMEOUT,
            Error::EventsLost(_) => Code::EVENTS_LOST,
        }
    }

    /// The HTTP status the REST layer answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidValue { .. }
            | Error::AlreadyExists(_)
            | Error::InvalidOperation(_)
            | Error::NotDeleted(_) => 400,
            Error::Unauthenticated(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::Timeout(_) => 408,
            Error::EventsLost(_) => 410,
            Error::MethodNotAllowed(_) => 405,
            Error::PayloadTooLarge(_) => 413,
            Error::TooManyAttempts { .. } => 429,
            Error::Unavailable(_) | Error::Busy { .. } => 503,
            Error::Internal(_) => 500,
        }
    }

    /// The field a validation error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidValue { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// The message shown to clients: for store and internal failures, never the cause.
    pub fn public_message(&self) -> String {
        self.to_string()
    }

    /// How long the client should wait before asking again, for the errors that say so.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Error::TooManyAttempts {
                retry_after_seconds,
            }
            | Error::Busy {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        }
    }

    /// A change names a platform that does not exist (the documented 400/18 and message).
    pub fn platform_missing() -> Error {
        Error::InvalidOperation(platform_missing_message(None))
    }

    /// A read of one platform that does not exist (404).
    pub fn platform_not_found(name: &str) -> Error {
        Error::NotFound(platform_missing_message(Some(name)))
    }

    /// A group's assignment was sent without `name`, which must be a platform name or null.
    pub fn assignment_name_required() -> Error {
        Error::invalid(
            "name",
            "name is required: a platform name, or null to clear the assignment",
        )
    }
}
