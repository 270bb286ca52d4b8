//! The system-wide call recording properties.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    pub continue_call_after_recording_failure: bool,
    /// Deprecated, still served.
    pub refresh_period_seconds: u32,
    /// Deprecated, still served.
    pub max_consecutive_failures: u32,
    pub max_response_wait_time_milliseconds: u32,
    pub continue_call_after_video_recording_failure: bool,
}

impl Default for Properties {
    /// The values of a new store.
    fn default() -> Self {
        Properties {
            continue_call_after_recording_failure: true,
            refresh_period_seconds: 60,
            max_consecutive_failures: 1,
            max_response_wait_time_milliseconds: 3000,
            continue_call_after_video_recording_failure: true,
        }
    }
}

/// A modify request: `None` leaves a property unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PropertiesChange {
    pub continue_call_after_recording_failure: Option<bool>,
    pub refresh_period_seconds: Option<i64>,
    pub max_consecutive_failures: Option<i64>,
    pub max_response_wait_time_milliseconds: Option<i64>,
    pub continue_call_after_video_recording_failure: Option<bool>,
}

pub const REFRESH_PERIOD_SECONDS: (u32, u32) = (
    crate::limit!(REFRESH_PERIOD_SECONDS_MIN),
    crate::limit!(REFRESH_PERIOD_SECONDS_MAX),
);
pub const MAX_CONSECUTIVE_FAILURES: (u32, u32) = (
    crate::limit!(MAX_CONSECUTIVE_FAILURES_MIN),
    crate::limit!(MAX_CONSECUTIVE_FAILURES_MAX),
);
pub const MAX_RESPONSE_WAIT_TIME_MILLISECONDS: (u32, u32) = (
    crate::limit!(MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MIN),
    crate::limit!(MAX_RESPONSE_WAIT_TIME_MILLISECONDS_MAX),
);

fn in_range(field: &str, value: i64, (min, max): (u32, u32)) -> Result<u32> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| Error::invalid(field, format!("{field} must be {min}-{max} (got {value})")))
}

impl Properties {
    pub fn changed(&self, change: &PropertiesChange) -> Result<Properties> {
        let mut next = *self;
        if let Some(v) = change.continue_call_after_recording_failure {
            next.continue_call_after_recording_failure = v;
        }
        if let Some(v) = change.refresh_period_seconds {
            next.refresh_period_seconds =
                in_range("refreshPeriodSeconds", v, REFRESH_PERIOD_SECONDS)?;
        }
        if let Some(v) = change.max_consecutive_failures {
            next.max_consecutive_failures =
                in_range("maxConsecutiveFailures", v, MAX_CONSECUTIVE_FAILURES)?;
        }
        if let Some(v) = change.max_response_wait_time_milliseconds {
            next.max_response_wait_time_milliseconds = in_range(
                "maxResponseWaitTimeMilliseconds",
                v,
                MAX_RESPONSE_WAIT_TIME_MILLISECONDS,
            )?;
        }
        if let Some(v) = change.continue_call_after_video_recording_failure {
            next.continue_call_after_video_recording_failure = v;
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_inclusive_and_name_the_field() {
        let p = Properties::default();
        let ok = PropertiesChange {
            refresh_period_seconds: Some(300),
            max_consecutive_failures: Some(10),
            max_response_wait_time_milliseconds: Some(50),
            ..Default::default()
        };
        let next = p.changed(&ok).unwrap();
        assert_eq!(next.refresh_period_seconds, 300);
        assert_eq!(next.max_response_wait_time_milliseconds, 50);
        let bad = PropertiesChange {
            max_response_wait_time_milliseconds: Some(10_001),
            ..Default::default()
        };
        assert_eq!(
            p.changed(&bad).unwrap_err().field(),
            Some("maxResponseWaitTimeMilliseconds")
        );
        let bad = PropertiesChange {
            refresh_period_seconds: Some(9),
            ..Default::default()
        };
        assert_eq!(
            p.changed(&bad).unwrap_err().field(),
            Some("refreshPeriodSeconds")
        );
    }
}
