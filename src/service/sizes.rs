//! How long the model's lists are, for callers that bound their work by it (GraphQL counts
//! a list field by its length).

use std::collections::HashMap;
use std::sync::Arc;

use super::Service;
use crate::error::Result;
use crate::store::Read;

/// The lengths of the lists, at one commit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListSizes {
    pub platforms: u64,
    pub tenants: u64,
    pub groups: u64,
    /// Groups of the tenant with the most.
    pub largest_tenant: u64,
    /// Groups that have a platform assigned.
    pub assigned: u64,
    /// Groups of the platform used by the most.
    pub largest_usage: u64,
}

impl ListSizes {
    /// The sizes at `read`; the tenants' and groups' only `with_groups` (they take a pass
    /// over every group).
    fn of(read: &dyn Read, with_groups: bool) -> Result<ListSizes> {
        let mut sizes = ListSizes {
            platforms: read.platform_names()?.len() as u64,
            ..ListSizes::default()
        };
        if !with_groups {
            return Ok(sizes);
        }
        let mut usage: HashMap<String, u64> = HashMap::new();
        for tenant in read.tenants()? {
            sizes.tenants += 1;
            let groups = read.groups(&tenant.tenant_id)?;
            sizes.groups += groups.len() as u64;
            sizes.largest_tenant = sizes.largest_tenant.max(groups.len() as u64);
            for platform in groups.into_iter().filter_map(|g| g.platform) {
                sizes.assigned += 1;
                *usage.entry(platform).or_default() += 1;
            }
        }
        sizes.largest_usage = usage.into_values().max().unwrap_or(0);
        Ok(sizes)
    }
}

impl Service {
    /// The lengths of the lists now; with `with_groups`, also the tenants' and groups' (a pass
    /// over every group, done at most once per log position). Counts only, so no caller check.
    pub fn list_sizes(&self, with_groups: bool) -> Result<Arc<ListSizes>> {
        let snap = self.snapshot();
        let mut kept = snap.list_sizes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((has_groups, sizes)) = &*kept
            && (*has_groups || !with_groups)
        {
            return Ok(sizes.clone());
        }
        let sizes = Arc::new(ListSizes::of(&snap.state, with_groups)?);
        *kept = Some((with_groups, sizes.clone()));
        Ok(sizes)
    }
}
