//! Every numeric range of the model, in one place.
//!
//! The numbers are written once, in [`limit!`](crate::limit), because some places need them
//! as literals: the GraphQL schema's descriptions are attributes, which take
//! `concat!("1-", limit!(NAME_MAX), " characters")` but not a constant. The model's constants
//! are these numbers, the checks and their messages use the constants, and the OpenAPI
//! document takes its ranges from [`FIELD_RANGES`].

/// One limit of the model as a literal, by the name of its constant.
#[doc(hidden)]
#[macro_export]
macro_rules! limit {
    (NAME_MAX) => {
        80
    };
    (NET_ADDRESS_MAX) => {
        80
    };
    (DESCRIPTION_MAX) => {
        80
    };
    (PORT_MIN) => {
        1
    };
    (PORT_MAX) => {
        65535
    };
    (ID_MAX) => {
        30
    };
    (USERNAME_MAX) => {
        80
    };
    (PASSWORD_MIN) => {
        8
    };
    (PASSWORD_MAX) => {
        1024
    };
    (REFRESH_PERIOD_SECONDS_MIN) => {
        10
    };
    (REFRESH_PERIOD_SECONDS_MAX) => {
        300
    };
    (MAX_CONSECUTIVE_FAILURES_MIN) => {
        1
    };
    (MAX_CONSECUTIVE_FAILURES_MAX) => {
        10
    };
    (MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MIN) => {
        50
    };
    (MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MAX) => {
        10000
    };
}

use super::{org, platform, properties, user};

/// What a range bounds: a text's length in characters, or a number's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Characters,
    Value,
}

/// The range of a field, under the name clients send it by (the same name validation errors
/// carry in `field`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRange {
    pub field: &'static str,
    pub bound: Bound,
    pub min: i64,
    pub max: i64,
}

const fn chars(field: &'static str, min: usize, max: usize) -> FieldRange {
    FieldRange {
        field,
        bound: Bound::Characters,
        min: min as i64,
        max: max as i64,
    }
}

const fn value(field: &'static str, (min, max): (u32, u32)) -> FieldRange {
    FieldRange {
        field,
        bound: Bound::Value,
        min: min as i64,
        max: max as i64,
    }
}

/// Every ranged field of the model.
pub const FIELD_RANGES: &[FieldRange] = &[
    chars("name", 1, platform::NAME_MAX),
    chars("netAddress", 1, platform::NET_ADDRESS_MAX),
    value(
        "port",
        (platform::PORT_MIN as u32, platform::PORT_MAX as u32),
    ),
    chars("description", 1, platform::DESCRIPTION_MAX),
    chars("tenantId", 1, org::ID_MAX),
    chars("groupId", 1, org::ID_MAX),
    chars("username", 1, user::USERNAME_MAX),
    chars("password", user::PASSWORD_MIN, user::PASSWORD_MAX),
    value("refreshPeriodSeconds", properties::REFRESH_PERIOD_SECONDS),
    value(
        "maxConsecutiveFailures",
        properties::MAX_CONSECUTIVE_FAILURES,
    ),
    value(
        "maxResponseWaitTimeMilliseconds",
        properties::MAX_RESPONSE_WAIT_TIME_MILLISECONDS,
    ),
];

/// The range of a field, if it has one.
pub fn range_of(field: &str) -> Option<&'static FieldRange> {
    FIELD_RANGES.iter().find(|r| r.field == field)
}
