//! Whether a platform answers SIP OPTIONS, as this gateway last saw it, and the rule that
//! turns probe outcomes into a state.

use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReachabilityState {
    /// The last probe was answered.
    Up,
    /// The last `failures` probes in a row failed.
    Down,
    /// Probed, but neither answered yet nor failed often enough to be down.
    Unknown,
    /// Probing is off on this gateway.
    NotProbed,
}

impl ReachabilityState {
    pub fn label(self) -> &'static str {
        match self {
            ReachabilityState::Up => "UP",
            ReachabilityState::Down => "DOWN",
            ReachabilityState::Unknown => "UNKNOWN",
            ReachabilityState::NotProbed => "NOT_PROBED",
        }
    }
}

/// A time as both APIs show it: RFC 3339, UTC, to the millisecond.
pub fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// A latency in milliseconds, to the microsecond.
pub fn millis(latency: Duration) -> f64 {
    (latency.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// How one probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// A final response with a status of 200-499.
    Answered { latency: Duration },
    /// Anything else, with a short reason (`timeout`, `connection refused`,
    /// `503 Service Unavailable`, ...).
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachability {
    pub state: ReachabilityState,
    /// When the current state began (none when not probed).
    pub since: Option<SystemTime>,
    pub last_checked_at: Option<SystemTime>,
    /// The round trip of the last answered probe.
    pub last_latency: Option<Duration>,
    pub consecutive_failures: u32,
    /// Why the last probe failed; none after an answer.
    pub last_error: Option<String>,
}

/// A change of state made by one probe outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub previous: ReachabilityState,
    pub state: ReachabilityState,
}

impl Reachability {
    pub fn not_probed() -> Reachability {
        Reachability {
            state: ReachabilityState::NotProbed,
            since: None,
            last_checked_at: None,
            last_latency: None,
            consecutive_failures: 0,
            last_error: None,
        }
    }

    /// A platform that probing has just started to follow.
    pub fn unknown(now: SystemTime) -> Reachability {
        Reachability {
            state: ReachabilityState::Unknown,
            since: Some(now),
            ..Reachability::not_probed()
        }
    }

    /// Applies one outcome: an answer makes the platform up at once, the `failures`-th
    /// failure in a row makes it down. Returns the change of state, if any.
    pub fn record(
        &mut self,
        outcome: &ProbeOutcome,
        at: SystemTime,
        failures: u32,
    ) -> Option<StateChange> {
        let previous = self.state;
        self.last_checked_at = Some(at);
        let next = match outcome {
            ProbeOutcome::Answered { latency } => {
                self.last_latency = Some(*latency);
                self.consecutive_failures = 0;
                self.last_error = None;
                ReachabilityState::Up
            }
            ProbeOutcome::Failed { reason } => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                self.last_error = Some(reason.clone());
                if self.consecutive_failures >= failures.max(1) {
                    ReachabilityState::Down
                } else {
                    previous
                }
            }
        };
        if next == previous {
            return None;
        }
        self.state = next;
        self.since = Some(at);
        Some(StateChange {
            previous,
            state: next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> ProbeOutcome {
        ProbeOutcome::Failed {
            reason: "timeout".into(),
        }
    }

    fn answered() -> ProbeOutcome {
        ProbeOutcome::Answered {
            latency: Duration::from_millis(3),
        }
    }

    #[test]
    fn down_after_exactly_the_configured_failures_and_up_after_one_answer() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut r = Reachability::unknown(t0);
        assert_eq!(r.record(&failed(), t0, 3), None);
        assert_eq!(r.record(&failed(), t0, 3), None);
        assert_eq!(r.state, ReachabilityState::Unknown);
        assert_eq!(r.consecutive_failures, 2);
        let t3 = t0 + Duration::from_secs(3);
        assert_eq!(
            r.record(&failed(), t3, 3),
            Some(StateChange {
                previous: ReachabilityState::Unknown,
                state: ReachabilityState::Down
            })
        );
        assert_eq!(r.since, Some(t3));
        assert_eq!(r.last_error.as_deref(), Some("timeout"));
        // Further failures change nothing.
        assert_eq!(r.record(&failed(), t3, 3), None);
        assert_eq!(r.consecutive_failures, 4);
        let t4 = t3 + Duration::from_secs(1);
        assert_eq!(
            r.record(&answered(), t4, 3),
            Some(StateChange {
                previous: ReachabilityState::Down,
                state: ReachabilityState::Up
            })
        );
        assert_eq!(r.consecutive_failures, 0);
        assert_eq!(r.last_error, None);
        assert_eq!(r.last_latency, Some(Duration::from_millis(3)));
        assert_eq!(r.last_checked_at, Some(t4));
        // A failure while up keeps it up until the threshold.
        assert_eq!(r.record(&failed(), t4, 3), None);
        assert_eq!(r.state, ReachabilityState::Up);
        assert_eq!(r.last_latency, Some(Duration::from_millis(3)));
    }

    #[test]
    fn a_threshold_of_one_goes_down_at_the_first_failure() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut r = Reachability::unknown(t0);
        assert_eq!(
            r.record(&failed(), t0, 1).map(|c| c.state),
            Some(ReachabilityState::Down)
        );
    }
}
