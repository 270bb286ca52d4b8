//! The complexity of a request, counted the way its answer grows: each field counts 1, and a
//! list field counts its items times what each item selects. The lengths of the lists are
//! known from the store ([`Sizes`]): `platforms` is the number of platforms, `tenants` the
//! number of tenants, `groups` and `usage` the groups of one tenant or one platform. So an
//! honest dashboard listing every platform costs about its answer's size, and the same list
//! asked for hundreds of times (aliases, a batch) is refused before anything runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_graphql::Name;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::error::Result;

pub use crate::service::ListSizes as Sizes;

/// The lengths GraphQL's list fields have.
pub trait Lengths {
    /// The length of list field `name`. Reached through another list, a nested list is
    /// counted at its average length (the whole answer holds the total); alone, at its
    /// largest. `None` for a field that is not a list of the schema.
    fn length(&self, name: &str, in_list: bool) -> Option<u64>;
}

impl Lengths for Sizes {
    fn length(&self, name: &str, in_list: bool) -> Option<u64> {
        let per = |total: u64, parents: u64, largest: u64| {
            if in_list {
                total.div_ceil(parents.max(1))
            } else {
                largest
            }
        };
        match name {
            "platforms" => Some(self.platforms),
            "tenants" => Some(self.tenants),
            "groups" => Some(per(self.groups, self.tenants, self.largest_tenant)),
            "usage" => Some(per(self.assigned, self.platforms, self.largest_usage)),
            // A page of the change log holds at most this many entries; an entry's changes
            // are few, but a commit may end many sessions at once.
            "edges" => Some(crate::service::AUDIT_PAGE_MAX as u64),
            "changes" => Some(if in_list { 4 } else { 64 }),
            _ => None,
        }
    }
}

/// The list fields [`Sizes::length`] knows, so that a test can check the schema has no other.
pub const LIST_FIELDS: [&str; 6] = [
    "platforms",
    "tenants",
    "groups",
    "usage",
    "edges",
    "changes",
];

/// The cost of every operation of `document` (fragments expanded, each computed once). The
/// sizes are asked for only when the document selects a list, `true` when one that depends
/// on the groups. A fragment cycle, refused earlier by the shape limits, counts nothing here.
pub fn cost(
    document: &ExecutableDocument,
    sizes: impl FnOnce(bool) -> Result<Arc<Sizes>>,
) -> Result<u64> {
    let lists = lists_selected(document);
    let sizes = if lists.is_empty() {
        Arc::default()
    } else {
        sizes(lists.iter().any(|l| *l != "platforms"))?
    };
    let mut counter = Counter {
        document,
        sizes: &sizes,
        memo: HashMap::new(),
        visiting: HashSet::new(),
    };
    Ok(document
        .operations
        .iter()
        .map(|(_, operation)| counter.count(&operation.node.selection_set.node, false))
        .fold(0, u64::saturating_add))
}

/// The list fields a document selects anywhere.
fn lists_selected(document: &ExecutableDocument) -> HashSet<&'static str> {
    let mut found = HashSet::new();
    super::limits::each_written_field(document, &mut |field| {
        let name = field.name.node.as_str();
        if let Some(list) = LIST_FIELDS.iter().find(|l| **l == name) {
            found.insert(*list);
        }
    });
    found
}

struct Counter<'a> {
    document: &'a ExecutableDocument,
    sizes: &'a Sizes,
    memo: HashMap<(&'a Name, bool), u64>,
    visiting: HashSet<(&'a Name, bool)>,
}

impl<'a> Counter<'a> {
    fn count(&mut self, set: &'a SelectionSet, in_list: bool) -> u64 {
        let mut total: u64 = 0;
        for selection in &set.items {
            let n = match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    match self.sizes.length(field.name.node.as_str(), in_list) {
                        Some(items) => {
                            let each = self.count(&field.selection_set.node, true).max(1);
                            items.saturating_mul(each).saturating_add(1)
                        }
                        None => self
                            .count(&field.selection_set.node, in_list)
                            .saturating_add(1),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.count(&fragment.node.selection_set.node, in_list)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, in_list)
                }
            };
            total = total.saturating_add(n);
        }
        total
    }

    fn fragment(&mut self, name: &'a Name, in_list: bool) -> u64 {
        let key = (name, in_list);
        if let Some(n) = self.memo.get(&key) {
            return *n;
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            return 0;
        };
        if !self.visiting.insert(key) {
            return 0;
        }
        let n = self.count(&fragment.node.selection_set.node, in_list);
        self.visiting.remove(&key);
        self.memo.insert(key, n);
        n
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn sizes() -> Sizes {
        Sizes {
            platforms: 100,
            tenants: 10,
            groups: 50,
            largest_tenant: 20,
            assigned: 200,
            largest_usage: 30,
        }
    }

    fn of(query: &str) -> u64 {
        cost(&parse_query(query).expect("parses"), |_| {
            Ok(Arc::new(sizes()))
        })
        .expect("counted")
    }

    /// What `cost` asked the sizes for: nothing, or with or without the groups.
    fn asked(query: &str) -> Option<bool> {
        let mut asked = None;
        cost(&parse_query(query).expect("parses"), |with_groups| {
            asked = Some(with_groups);
            Ok(Arc::new(sizes()))
        })
        .expect("counted");
        asked
    }

    #[test]
    fn the_groups_are_counted_only_when_a_list_needs_them() {
        assert_eq!(asked("{ me { username } }"), None);
        assert_eq!(
            asked("{ callRecordingPlatforms { platforms { name } } }"),
            Some(false)
        );
        assert_eq!(
            asked("{ callRecordingPlatforms { platforms { usage { groupId } } } }"),
            Some(true)
        );
        assert_eq!(
            asked("{ ...F } fragment F on Query { tenants { tenantId } }"),
            Some(true)
        );
    }

    #[test]
    fn fields_count_one_and_lists_their_items() {
        assert_eq!(of("{ me { username level } }"), 3);
        // 1 + 1 + (1 + 100 * 2)
        assert_eq!(
            of("{ callRecordingPlatforms { systemDefault platforms { name port } } }"),
            203
        );
        // A list of leaves counts its items.
        assert_eq!(of("{ tenants { tenantId } }"), 11);
    }

    #[test]
    fn nested_lists_count_the_average_alone_the_largest() {
        // 1 + 10 * (1 + 1 + 5 * 1): 50 groups over 10 tenants.
        assert_eq!(of("{ tenants { tenantId groups { groupId } } }"), 71);
        // One tenant: its groups at most the largest tenant's 20.
        assert_eq!(of("{ groups(tenantId: \"t\") { groupId } }"), 21);
        // usage: 200 assignments over 100 platforms, or 30 for one platform.
        assert_eq!(
            of("{ callRecordingPlatforms { platforms { usage { groupId } } } }"),
            1 + 1 + 100 * (1 + 2)
        );
        assert_eq!(
            of("{ callRecordingPlatform(name: \"p\") { usage { groupId } } }"),
            1 + 1 + 30
        );
    }

    #[test]
    fn aliases_fragments_and_operations_all_count() {
        let one = of("{ callRecordingPlatforms { platforms { name } } }");
        let aliased = of("{ a: callRecordingPlatforms { platforms { name } } \
             b: callRecordingPlatforms { platforms { name } } }");
        assert_eq!(aliased, 2 * one);
        let spread = of(
            "{ ...F ...F } fragment F on Query { callRecordingPlatforms { \
             platforms { name } } }",
        );
        assert_eq!(spread, 2 * one);
        let two = of("query A { callRecordingPlatforms { platforms { name } } } \
             query B { callRecordingPlatforms { platforms { name } } }");
        assert_eq!(two, 2 * one);
    }

    #[test]
    fn every_list_of_the_schema_has_a_length() {
        let sdl = super::super::sdl();
        let document = async_graphql::parser::parse_schema(&sdl).expect("the SDL parses");
        let mut lists = Vec::new();
        for definition in &document.definitions {
            let async_graphql::parser::types::TypeSystemDefinition::Type(ty) = definition else {
                continue;
            };
            let async_graphql::parser::types::TypeKind::Object(object) = &ty.node.kind else {
                continue;
            };
            for field in &object.fields {
                let field = &field.node;
                if matches!(
                    field.ty.node.base,
                    async_graphql::parser::types::BaseType::List(_)
                ) {
                    lists.push(field.name.node.to_string());
                }
            }
        }
        assert!(!lists.is_empty());
        for list in lists {
            assert!(LIST_FIELDS.contains(&list.as_str()), "{list} has no length");
            assert!(sizes().length(&list, false).is_some());
        }
    }
}
