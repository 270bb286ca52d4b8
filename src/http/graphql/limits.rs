//! What one GraphQL request may ask for, and a `code` on every error async-graphql raises
//! itself (parse, validation and limit errors carry none of their own).
//!
//! async-graphql enforces depth, parser recursion and directives; [`ShapeLimits`] adds what
//! it lacks: caps on aliases, on fields as written, and on fields once fragments are
//! expanded; [`super::cost`] the complexity, with list fields counted by their length. That last one is checked with one
//! memoised pass over the fragments *before* async-graphql's own passes, which expand
//! fragments without memoising, so a "fragment bomb" (each fragment spreading the previous
//! one twice) is refused in linear time instead of being expanded exponentially.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, Response, ServerError, ServerResult};

use super::error::{GqlError, codes};

/// Operations in one batched POST.
pub const MAX_BATCH: usize = 10;
/// Field nesting. The schema's own types nest at most 4 deep; the rest leaves room for
/// GraphiQL's introspection query (13 levels) and refuses recursive introspection abuse.
pub const MAX_DEPTH: usize = 16;
/// Selection-set nesting seen by async-graphql's recursion check (fragments included).
pub const MAX_RECURSIVE_DEPTH: usize = 32;
/// Directives on one field.
pub const MAX_DIRECTIVES: usize = 5;
/// Aliased fields in one document.
pub const MAX_ALIASES: usize = 30;
/// Fields as written in one document (operations and fragments).
pub const MAX_FIELDS: usize = 500;
/// Fields once every fragment spread is expanded.
pub const MAX_EXPANDED_FIELDS: usize = 1000;

/// Caps on aliases and fields (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct ShapeLimits {
    pub max_aliases: usize,
    pub max_fields: usize,
    pub max_expanded_fields: usize,
}

impl Default for ShapeLimits {
    fn default() -> Self {
        ShapeLimits {
            max_aliases: MAX_ALIASES,
            max_fields: MAX_FIELDS,
            max_expanded_fields: MAX_EXPANDED_FIELDS,
        }
    }
}

impl ShapeLimits {
    /// Parses the request (async-graphql reuses the parsed document) and refuses it when it is
    /// over a limit.
    pub fn admit<'r>(&self, request: &'r mut Request) -> ServerResult<&'r ExecutableDocument> {
        let document = request.parsed_query().map_err(|mut e| {
            set_code(&mut e, codes::GRAPHQL_PARSE_FAILED);
            e
        })?;
        self.check(document)
            .map_err(|message| GqlError::transport(codes::QUERY_TOO_LARGE, message))
            .map_err(GqlError::into_server_error)?;
        Ok(document)
    }
}

fn set_code(error: &mut ServerError, code: &'static str) {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

/// Gives every error a `code`: async-graphql's own (validation, limits, input coercion) have
/// none. Its limit errors are told by their messages, which the limit tests pin down.
pub fn tag_errors(response: &mut Response) {
    for error in &mut response.errors {
        if error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some())
        {
            continue;
        }
        let limit = [
            "Query is nested too deep",
            "The recursion depth of the query",
            "The number of directives",
        ]
        .iter()
        .any(|prefix| error.message.starts_with(prefix));
        set_code(
            error,
            if limit {
                codes::QUERY_TOO_LARGE
            } else {
                codes::GRAPHQL_VALIDATION_FAILED
            },
        );
    }
}

/// Counts of one document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub aliases: usize,
    pub fields: usize,
}

impl ShapeLimits {
    /// `Err` with the reason when the document is over a limit.
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), String> {
        let shape = written_shape(document);
        if shape.aliases > self.max_aliases {
            return Err(format!(
                "the query uses {} aliases; at most {} are allowed",
                shape.aliases, self.max_aliases
            ));
        }
        if shape.fields > self.max_fields {
            return Err(format!(
                "the query has {} fields; at most {} are allowed",
                shape.fields, self.max_fields
            ));
        }
        let mut expander = Expander {
            document,
            memo: HashMap::new(),
            visiting: HashSet::new(),
            cap: self.max_expanded_fields,
        };
        for (_, operation) in document.operations.iter() {
            let n = expander.count(&operation.node.selection_set.node)?;
            if n > self.max_expanded_fields {
                return Err(too_many_expanded(self.max_expanded_fields));
            }
        }
        Ok(())
    }
}

fn too_many_expanded(cap: usize) -> String {
    format!("the query has more than {cap} fields once its fragments are expanded")
}

/// Whether an operation selects `__schema` or `__type` at its root (directly or through
/// fragments; a fragment cycle is refused before this runs).
pub fn introspects(document: &ExecutableDocument) -> bool {
    fn root(document: &ExecutableDocument, set: &SelectionSet, hops: usize) -> bool {
        set.items.iter().any(|selection| match &selection.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type")
            }
            Selection::InlineFragment(fragment) => {
                root(document, &fragment.node.selection_set.node, hops)
            }
            Selection::FragmentSpread(spread) => {
                hops < MAX_RECURSIVE_DEPTH
                    && document
                        .fragments
                        .get(&spread.node.fragment_name.node)
                        .is_some_and(|f| root(document, &f.node.selection_set.node, hops + 1))
            }
        })
    }
    document
        .operations
        .iter()
        .any(|(_, operation)| root(document, &operation.node.selection_set.node, 0))
}

/// Calls `visit` on every field as written in the document: in its operations and in its
/// fragments, each fragment once (spreads are not followed).
pub fn each_written_field<'a>(
    document: &'a ExecutableDocument,
    visit: &mut impl FnMut(&'a async_graphql::parser::types::Field),
) {
    fn walk<'a>(
        set: &'a SelectionSet,
        visit: &mut impl FnMut(&'a async_graphql::parser::types::Field),
    ) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    visit(&field.node);
                    walk(&field.node.selection_set.node, visit);
                }
                Selection::InlineFragment(fragment) => {
                    walk(&fragment.node.selection_set.node, visit)
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    for (_, operation) in document.operations.iter() {
        walk(&operation.node.selection_set.node, visit);
    }
    for fragment in document.fragments.values() {
        walk(&fragment.node.selection_set.node, visit);
    }
}

/// Aliases and fields as written, fragments counted once each.
pub fn written_shape(document: &ExecutableDocument) -> Shape {
    let mut shape = Shape::default();
    each_written_field(document, &mut |field| {
        shape.fields += 1;
        if field.alias.is_some() {
            shape.aliases += 1;
        }
    });
    shape
}

/// Counts fields with fragments expanded, each fragment computed once.
struct Expander<'a> {
    document: &'a ExecutableDocument,
    memo: HashMap<&'a Name, usize>,
    visiting: HashSet<&'a Name>,
    cap: usize,
}

impl<'a> Expander<'a> {
    fn count(&mut self, set: &'a SelectionSet) -> Result<usize, String> {
        let mut total: usize = 0;
        for selection in &set.items {
            let n = match &selection.node {
                Selection::Field(field) => {
                    1usize.saturating_add(self.count(&field.node.selection_set.node)?)
                }
                Selection::InlineFragment(fragment) => {
                    self.count(&fragment.node.selection_set.node)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node)?
                }
            };
            total = total.saturating_add(n);
            if total > self.cap {
                return Err(too_many_expanded(self.cap));
            }
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a Name) -> Result<usize, String> {
        if let Some(n) = self.memo.get(name) {
            return Ok(*n);
        }
        // An unknown fragment is for validation to report.
        let Some(fragment) = self.document.fragments.get(name) else {
            return Ok(0);
        };
        if !self.visiting.insert(name) {
            return Err(format!("fragment '{name}' spreads itself"));
        }
        let n = self.count(&fragment.node.selection_set.node)?;
        self.visiting.remove(name);
        self.memo.insert(name, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn check(query: &str) -> Result<(), String> {
        ShapeLimits::default().check(&parse_query(query).expect("parses"))
    }

    #[test]
    fn ordinary_queries_pass() {
        assert_eq!(check("{ me { username } a: me { level } }"), Ok(()));
        let shape = written_shape(&parse_query("{ a: me { username } b: me { level } }").unwrap());
        assert_eq!(
            shape,
            Shape {
                aliases: 2,
                fields: 4
            }
        );
    }

    #[test]
    fn too_many_aliases() {
        let query = format!(
            "{{ {} }}",
            (0..=MAX_ALIASES)
                .map(|i| format!("a{i}: me {{ username }}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert!(check(&query).unwrap_err().contains("aliases"));
    }

    #[test]
    fn fragment_bomb_is_refused_without_expanding_it() {
        // 2^60 fields once expanded; counted in 60 steps.
        let mut query = String::from("query { ...F60 } fragment F0 on Query { me { username } }");
        for i in 1..=60 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
                p = i - 1
            ));
        }
        assert!(check(&query).unwrap_err().contains("expanded"));
    }

    #[test]
    fn introspection_is_found_through_fragments() {
        let found = |q: &str| introspects(&parse_query(q).unwrap());
        assert!(found("{ __schema { queryType { name } } }"));
        assert!(found(
            "{ ... on Query { __type(name: \"Query\") { name } } }"
        ));
        assert!(found(
            "{ ...F } fragment F on Query { __schema { types { name } } }"
        ));
        assert!(!found("{ __typename me { username } }"));
    }

    #[test]
    fn fragment_cycles_are_refused() {
        let err = check("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
            .unwrap_err();
        assert!(err.contains("spreads itself"), "{err}");
    }
}
