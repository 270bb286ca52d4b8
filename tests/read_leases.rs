//! Read leases on PostgreSQL: a gateway holding one answers from memory, so every commit waits
//! for it before it is acknowledged; a lease that ends, lapses or is given up is waited for no
//! more. Two stores on one fresh database play two gateways.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use callrec_gateway::store::{
    Change, Commit, Committed, Entry, PgOptions, PgStore, Sequence, Store,
};

async fn database() -> Option<String> {
    if !common::store::server_reachable() {
        return None;
    }
    Some(common::store::fresh_database(&common::store::admin_url()))
}

async fn store(url: &str) -> Arc<PgStore> {
    Arc::new(PgStore::connect(PgOptions::new(url)).await.expect("store"))
}

/// A gateway at log position `at` holding leases of `length`.
async fn holder(url: &str, at: u64, length: Duration) -> Arc<PgStore> {
    let holder = store(url).await;
    holder.installed(Sequence(at), false);
    holder.hold_read_leases(length);
    holder
}

/// Waits (bounded) until `holder` answers from memory, i.e. looks at the head no more.
async fn until_it_holds(holder: &PgStore) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while holder.newest().await.expect("newest").is_some() {
        assert!(Instant::now() < deadline, "no lease within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn put(store: &PgStore, at: u64) {
    let commit = Commit {
        changes: vec![Change::PutSecret("k".into(), vec![at as u8])],
        entry: Entry::new(Sequence(at), 0, "system", "test"),
    };
    let committed = store
        .commit(Sequence(at - 1), &[commit])
        .await
        .expect("commit");
    assert_eq!(committed, Committed::At(Sequence(at)));
}

/// Waits (bounded) for an acknowledgement made by [`acknowledge`], failing with `why`.
async fn acknowledged(ack: tokio::task::JoinHandle<callrec_gateway::error::Result<()>>, why: &str) {
    tokio::time::timeout(Duration::from_secs(20), ack)
        .await
        .expect(why)
        .expect("task")
        .expect("durable");
}

/// Acknowledges `at` in a task of its own.
fn acknowledge(
    store: &Arc<PgStore>,
    at: u64,
) -> tokio::task::JoinHandle<callrec_gateway::error::Result<()>> {
    let store = store.clone();
    tokio::spawn(async move { store.durable(Sequence(at)).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_acknowledged_once_every_gateway_holding_a_lease_has_installed_it() {
    let Some(url) = database().await else {
        return;
    };
    let writer = store(&url).await;
    let holder = holder(&url, 0, Duration::from_secs(30)).await;
    until_it_holds(&holder).await;
    put(&writer, 1).await;
    let mut acked = acknowledge(&writer, 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut acked)
            .await
            .is_err(),
        "acknowledged before the gateway answering from memory had it"
    );
    holder.installed(Sequence(1), true);
    acknowledged(acked, "acknowledged once the holder reported it").await;
    // A gateway does not wait for its own lease (its row still says 1).
    put(&holder, 2).await;
    holder.installed(Sequence(2), false);
    acknowledged(
        acknowledge(&holder, 2),
        "acknowledged: the writer holds no lease",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_anew_is_trusted_only_once_the_head_it_saw_is_installed() {
    let Some(url) = database().await else {
        return;
    };
    let writer = store(&url).await;
    put(&writer, 1).await;
    // Commit 1 waited for nobody: the holder took its lease after it.
    let holder = holder(&url, 0, Duration::from_secs(2)).await;
    // Several renewals (every half second) go by: the holder still looks, and sees 1.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        assert_eq!(
            holder.newest().await.expect("newest"),
            Some(Sequence(1)),
            "answered from memory without commit 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    holder.installed(Sequence(1), true);
    until_it_holds(&holder).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_behind_the_head_lets_its_lease_lapse_and_is_waited_for_no_more() {
    let Some(url) = database().await else {
        return;
    };
    let writer = store(&url).await;
    let length = Duration::from_secs(1);
    let holder = holder(&url, 0, length).await;
    until_it_holds(&holder).await;
    // The holder never installs commit 1: its renewals see it behind and stop, so the lease
    // lapses, and the commit is acknowledged once it has ended.
    put(&writer, 1).await;
    let started = Instant::now();
    acknowledged(acknowledge(&writer, 1), "acknowledged once the lease ended").await;
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "acknowledged at once: the holder was not waited for"
    );
    assert_eq!(
        holder.newest().await.expect("newest"),
        Some(Sequence(1)),
        "answered from memory after the lease lapsed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_given_up_is_waited_for_no_more_and_its_holder_looks_again() {
    let Some(url) = database().await else {
        return;
    };
    let writer = store(&url).await;
    let holder = holder(&url, 0, Duration::from_secs(60)).await;
    until_it_holds(&holder).await;
    holder.release().await.expect("release");
    assert_eq!(holder.newest().await.expect("newest"), Some(Sequence(0)));
    put(&writer, 1).await;
    acknowledged(
        acknowledge(&writer, 1),
        "acknowledged long before the given-up lease would have ended",
    )
    .await;
}
