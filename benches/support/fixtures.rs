//! Store fixtures written straight into a data folder, in a few big commits: loading 100,000
//! groups through the API would take minutes of flushes and measure nothing of interest.
#![allow(dead_code)]

use callrec_gateway::model::{
    Group, MediaStream, Platform, SchemaVersion, Tenant, TransportProtocol,
};
use callrec_gateway::store::{Change, SledStore};

/// The platform whose usage is measured.
pub const MEASURED: &str = "Measured";
/// Sorted before and after `MEASURED`, so its index range sits among other entries.
pub const OTHERS: [&str; 3] = ["Alpha", "Omega", "Zulu"];
pub const USERS_OF_MEASURED: usize = 10;
const GROUPS_PER_TENANT: usize = 100;
const COMMIT_SIZE: usize = 10_000;

pub fn platform(name: &str) -> Platform {
    Platform {
        name: name.to_owned(),
        net_address: "10.0.32.55".into(),
        port: Some(222),
        media_stream: MediaStream::Dual,
        transport_protocol: TransportProtocol::Udp,
        description: Some("test description".into()),
        schema_version: SchemaVersion::V1_0,
        support_video_recording: false,
    }
}

/// The platform of group number `i`: every `groups / 10`th group uses the measured one.
fn platform_of(i: usize, groups: usize) -> &'static str {
    let stride = (groups / USERS_OF_MEASURED).max(1);
    if i.is_multiple_of(stride) {
        MEASURED
    } else {
        OTHERS[i % OTHERS.len()]
    }
}

/// `MEASURED` and `OTHERS` (the first of them the default), then `groups` groups in tenants
/// of 100, ten of them using `MEASURED`.
pub fn load_groups(store: &SledStore, groups: usize) -> anyhow::Result<()> {
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
            store.seed(&std::mem::take(&mut changes))?;
        }
    }
    if !changes.is_empty() {
        store.seed(&changes)?;
    }
    Ok(())
}
