//! Reachability of the call recording platforms: with `serve --probe-platforms`, each
//! platform gets a SIP OPTIONS request (RFC 3261 §11) every `--probe-interval`, and what it
//! answers is recorded in the service's reachability table, which both APIs, the event
//! stream and `/metrics` read.
//!
//! The prober sits beside the service and reads the platform list and the properties through
//! it, at every turn, so that added, modified and deleted platforms and a changed
//! `maxResponseWaitTimeMilliseconds` take effect at the next probe. It never holds up a
//! request: it runs in a task of its own, with at most `--probe-concurrency` probes in flight
//! and each bounded by the properties' wait time; at most one probe per platform is in flight,
//! and the next starts an interval after the previous one ended.

mod exchange;
pub mod sip;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Semaphore;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::exchange::{DEFAULT_PORT, probe};
use crate::model::{Platform, Principal, ProbeOutcome};
use crate::service::Service;

/// Used while the properties cannot be read.
const FALLBACK_WAIT: Duration = Duration::from_millis(3000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOptions {
    /// From the end of one probe of a platform to the start of the next.
    pub interval: Duration,
    /// Consecutive failures after which a platform is down.
    pub failures: u32,
    /// Probes in flight at once, over all platforms.
    pub concurrency: usize,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            interval: Duration::from_secs(30),
            failures: 3,
            concurrency: 64,
        }
    }
}

/// The running prober; [`Prober::stop`] ends it.
pub struct Prober {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    peak: Arc<AtomicUsize>,
}

impl Prober {
    /// Starts probing every platform of `service` now.
    pub fn start(service: Arc<Service>, options: ProbeOptions) -> Prober {
        let stop = CancellationToken::new();
        let peak = Arc::new(AtomicUsize::new(0));
        service.reachability_table().start_probing();
        let task = tokio::spawn(run(service, options, stop.clone(), peak.clone()));
        Prober { stop, task, peak }
    }

    /// The most probes that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Ends probing (probes in flight are dropped) and waits until it has ended.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Where a platform is in its cycle.
struct Slot {
    in_flight: bool,
    due: Instant,
}

async fn run(
    service: Arc<Service>,
    options: ProbeOptions,
    stop: CancellationToken,
    peak: Arc<AtomicUsize>,
) {
    let console = Principal::console();
    let table = service.reachability_table();
    // Any commit may add, move or delete a platform: look again at once.
    let mut commits = service.durable_commits();
    let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut running: JoinSet<(ProbeOutcome, Duration)> = JoinSet::new();
    let mut names_by_task: HashMap<Id, String> = HashMap::new();
    let mut slots: HashMap<String, Slot> = HashMap::new();
    let mut seq: u32 = 0;
    let in_flight = Arc::new(AtomicUsize::new(0));
    loop {
        let now = Instant::now();
        let list = match service.platforms(&console) {
            Ok(list) => Some(list),
            Err(e) => {
                tracing::warn!(error = %e, "the prober cannot read the platforms");
                None
            }
        };
        if let Some(list) = &list {
            let wait = service.properties(&console).map_or(FALLBACK_WAIT, |p| {
                Duration::from_millis(u64::from(p.max_response_wait_time_milliseconds))
            });
            let names: HashSet<&str> = list.platforms.iter().map(|p| p.name.as_str()).collect();
            table.follow(&names, SystemTime::now());
            slots.retain(|name, _| names.contains(name.as_str()));
            // The longest overdue first, so that no platform waits behind others forever
            // when permits are short.
            let mut due: Vec<(Instant, &Platform)> = Vec::new();
            for platform in &list.platforms {
                let slot = slots.entry(platform.name.clone()).or_insert(Slot {
                    in_flight: false,
                    due: now,
                });
                if !slot.in_flight && slot.due <= now {
                    due.push((slot.due, platform));
                }
            }
            due.sort_by_key(|(at, _)| *at);
            for (_, platform) in due {
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    // The others wait for a free permit (a probe ending wakes this loop).
                    break;
                };
                if let Some(slot) = slots.get_mut(&platform.name) {
                    slot.in_flight = true;
                }
                seq = seq.wrapping_add(1);
                let name = platform.name.clone();
                let platform = platform.clone();
                let in_flight = in_flight.clone();
                let peak = peak.clone();
                let handle = running.spawn(async move {
                    let _permit = permit;
                    let now_in_flight = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now_in_flight, Ordering::SeqCst);
                    let started = std::time::Instant::now();
                    let outcome = probe(&platform, seq, wait).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    (outcome, started.elapsed())
                });
                names_by_task.insert(handle.id(), name);
            }
        }
        // Without a free permit, due platforms wait for a probe to end, not for a timer
        // (which, already past, would spin this loop).
        let next_due = if permits.available_permits() == 0 {
            None
        } else {
            slots.values().filter(|s| !s.in_flight).map(|s| s.due).min()
        }
        .unwrap_or(now + options.interval);
        tokio::select! {
            () = stop.cancelled() => break,
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, result) = match done {
                    Ok((id, result)) => (id, Some(result)),
                    Err(e) => (e.id(), None),
                };
                let Some(name) = names_by_task.remove(&id) else { continue };
                let Some(slot) = slots.get_mut(&name) else { continue };
                slot.in_flight = false;
                slot.due = Instant::now() + options.interval;
                if let Some((outcome, took)) = result {
                    metrics::histogram!("callrec_platform_probe_duration_seconds")
                        .record(took.as_secs_f64());
                    table.record(&name, &outcome, SystemTime::now(), options.failures);
                }
            }
            () = tokio::time::sleep_until(next_due) => {}
            received = commits.changed() => {
                if received.is_err() {
                    break;
                }
            }
        }
    }
    running.abort_all();
    table.stop_probing();
}
