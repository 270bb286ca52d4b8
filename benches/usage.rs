//! How listing a platform's usage scales with the number of groups.
//!
//! Builds a store with 1,000 and with 100,000 groups, 10 of which use the measured platform
//! (the others use platforms named before and after it, so the usage index is full on both
//! sides of the range read), then times `Service::usage` many times. Usage is a range scan of
//! the index, so the median should barely move between the two sizes: the ratio should stay
//! close to 1.
//!
//! `cargo bench --bench usage`

use std::sync::Arc;
use std::time::{Duration, Instant};

use callrec_gateway::model::Principal;
use callrec_gateway::service::{Service, SessionSettings};
use callrec_gateway::store::{SledStore, Store, StoreOptions};

#[path = "support/fixtures.rs"]
mod fixtures;
use fixtures::{MEASURED, USERS_OF_MEASURED, load_groups};

const WARM_UP: usize = 1_000;
const ITERATIONS: usize = 20_000;

struct Sample {
    groups: usize,
    using: usize,
    median: Duration,
    p90: Duration,
}

fn measure(runtime: &tokio::runtime::Runtime, groups: usize) -> anyhow::Result<Sample> {
    let folder = tempfile::tempdir()?;
    let mut options = StoreOptions::new(folder.path());
    // Only reads are measured; waiting for the disk while loading would only slow the setup.
    options.flush = false;
    let store = Arc::new(SledStore::open(options)?);
    load_groups(&store, groups)?;
    let store: Arc<dyn Store> = store;
    let service = runtime.block_on(Service::new(store, SessionSettings::default()))?;
    let who = Principal::console();

    let using = service.usage(&who, MEASURED)?.len();
    anyhow::ensure!(using == USERS_OF_MEASURED, "fixture: {using} groups use it");
    for _ in 0..WARM_UP {
        std::hint::black_box(service.usage(&who, MEASURED)?);
    }
    let mut times = Vec::with_capacity(ITERATIONS);
    for _ in 0..ITERATIONS {
        let started = Instant::now();
        std::hint::black_box(service.usage(&who, std::hint::black_box(MEASURED))?);
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(Sample {
        groups,
        using,
        median: times[times.len() / 2],
        p90: times[times.len() * 9 / 10],
    })
}

fn main() -> anyhow::Result<()> {
    // `cargo test --benches` runs benches with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sizes: &[usize] = if quick { &[1_000] } else { &[1_000, 100_000] };
    let mut samples = Vec::new();
    for &groups in sizes {
        let started = Instant::now();
        let sample = measure(&runtime, groups)?;
        eprintln!(
            "{groups} groups: set up and measured in {:.1?}",
            started.elapsed()
        );
        samples.push(sample);
    }

    println!();
    println!(
        "{:>9} | {:>12} | {:>10} | {:>10}",
        "groups", "using it", "median ns", "p90 ns"
    );
    println!("{:-<9}-+-{:-<12}-+-{:-<10}-+-{:-<10}", "", "", "", "");
    for s in &samples {
        println!(
            "{:>9} | {:>12} | {:>10} | {:>10}",
            s.groups,
            s.using,
            s.median.as_nanos(),
            s.p90.as_nanos()
        );
    }
    if let [small, large] = samples.as_slice() {
        let ratio = large.median.as_nanos() as f64 / small.median.as_nanos().max(1) as f64;
        println!("\nmedian ratio 100k/1k: {ratio:.2} (close to 1: usage does not scan groups)");
    }
    Ok(())
}
