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

use callrec_gateway::model::{
    Group, MediaStream, Platform, Principal, SchemaVersion, Tenant, TransportProtocol,
};
use callrec_gateway::service::{Service, SessionSettings};
use callrec_gateway::store::{Change, SledStore, Store, StoreOptions};

const MEASURED: &str = "Measured";
/// Sorted before and after `MEASURED`, so its index range sits among other entries.
const OTHERS: [&str; 3] = ["Alpha", "Omega", "Zulu"];
const USERS_OF_MEASURED: usize = 10;
const GROUPS_PER_TENANT: usize = 100;
/// Fixtures go in a few big commits rather than one commit per group.
const COMMIT_SIZE: usize = 10_000;
const WARM_UP: usize = 1_000;
const ITERATIONS: usize = 20_000;

fn platform(name: &str) -> Platform {
    Platform {
        name: name.to_owned(),
        net_address: "10.0.32.55".into(),
        port: Some(222),
        media_stream: MediaStream::Dual,
        transport_protocol: TransportProtocol::Udp,
        description: None,
        schema_version: SchemaVersion::V1_0,
        support_video_recording: false,
    }
}

/// The platform of group number `i`: every `groups / 10`th group uses the measured one.
fn platform_of(i: usize, groups: usize) -> &'static str {
    let stride = groups / USERS_OF_MEASURED;
    if i.is_multiple_of(stride) {
        MEASURED
    } else {
        OTHERS[i % OTHERS.len()]
    }
}

fn load(store: &SledStore, groups: usize) -> anyhow::Result<()> {
    let mut changes: Vec<Change> = std::iter::once(MEASURED)
        .chain(OTHERS)
        .map(|name| Change::PutPlatform(platform(name)))
        .collect();
    changes.push(Change::SetDefault(Some(OTHERS[0].to_owned())));
    for i in 0..groups {
        let tenant_id = format!("tenant-{:05}", i / GROUPS_PER_TENANT);
        if i.is_multiple_of(GROUPS_PER_TENANT) {
            changes.push(Change::PutTenant(Tenant {
                tenant_id: tenant_id.clone(),
            }));
        }
        changes.push(Change::PutGroup(Group {
            tenant_id,
            group_id: format!("group-{i:06}"),
            platform: Some(platform_of(i, groups).to_owned()),
        }));
        if changes.len() >= COMMIT_SIZE {
            store.write().commit(std::mem::take(&mut changes))?;
        }
    }
    if !changes.is_empty() {
        store.write().commit(changes)?;
    }
    Ok(())
}

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
    load(&store, groups)?;
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
