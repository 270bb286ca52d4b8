//! What one load run measured, whoever generated the load.
#![allow(dead_code)]

use std::time::Duration;

pub struct Load {
    pub requests: u64,
    /// Requests that failed or were answered with an error status.
    pub failures: u64,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}
