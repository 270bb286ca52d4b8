//! The operation label of `callrec_graphql_operations_total`. A label is a time series kept
//! forever, and operation names are the client's to choose, so only a bounded set of names
//! ever becomes a label: names of operations that an authenticated caller ran without
//! errors, the first [`MAX_LABELS`] of them. Any other operation is counted as `other`, one without a name as
//! `anonymous`. The name comes from the document already parsed for the limits.

use std::collections::HashSet;
use std::sync::Mutex;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

/// Distinct operation names that may become labels.
pub const MAX_LABELS: usize = 100;
/// Longest operation name kept as a label; longer ones are `other`.
pub const MAX_LABEL_LENGTH: usize = 64;

pub const ANONYMOUS: &str = "anonymous";
pub const OTHER: &str = "other";

/// The operation a request runs, by name and kind: `operation_name` when the document has
/// it, else the document's only operation. The name is `None` for an anonymous operation;
/// the whole is `None` when the request names no operation of the document.
pub fn selected<'d>(
    document: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<(Option<&'d str>, OperationType)> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => Some((None, operation.node.ty)),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(operations), Some(wanted)) => operations
            .get_key_value(wanted)
            .map(|(name, operation)| (Some(name.as_str()), operation.node.ty)),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .iter()
            .next()
            .map(|(name, operation)| (Some(name.as_str()), operation.node.ty)),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The names allowed as labels.
#[derive(Default)]
pub struct Labels(Mutex<HashSet<String>>);

impl Labels {
    /// The label of an operation named `name` whose outcome was `ok`; a new name is admitted
    /// only by a success, while there is room.
    pub fn label(&self, name: Option<Option<&str>>, ok: bool) -> String {
        let name = match name {
            None => return OTHER.into(),
            Some(None) => return ANONYMOUS.into(),
            Some(Some(name)) => name,
        };
        if name.len() > MAX_LABEL_LENGTH || name == OTHER || name == ANONYMOUS {
            return OTHER.into();
        }
        let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if known.contains(name) || (ok && known.len() < MAX_LABELS && known.insert(name.into())) {
            name.into()
        } else {
            OTHER.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::parse_query;

    use super::*;

    fn name_of(query: &str, wanted: Option<&str>) -> Option<Option<String>> {
        let document = parse_query(query).expect("parses");
        selected(&document, wanted).map(|(n, _)| n.map(str::to_owned))
    }

    #[test]
    fn the_operation_that_runs_names_the_label() {
        assert_eq!(name_of("{ me { username } }", None), Some(None));
        assert_eq!(
            name_of("query Q { me { username } }", None),
            Some(Some("Q".into()))
        );
        assert_eq!(
            name_of(
                "query A { me { username } } query B { me { level } }",
                Some("B")
            ),
            Some(Some("B".into()))
        );
        assert_eq!(
            name_of("query A { me { username } } query B { me { level } }", None),
            None
        );
        assert_eq!(name_of("query A { me { username } }", Some("Nope")), None);
    }

    #[test]
    fn only_a_bounded_set_of_names_becomes_labels() {
        let labels = Labels::default();
        assert_eq!(labels.label(Some(Some("Failing")), false), OTHER);
        assert_eq!(labels.label(Some(None), true), ANONYMOUS);
        assert_eq!(labels.label(None, true), OTHER);
        for i in 0..MAX_LABELS {
            assert_eq!(
                labels.label(Some(Some(&format!("Op{i}"))), true),
                format!("Op{i}")
            );
        }
        assert_eq!(labels.label(Some(Some("OneMore")), true), OTHER);
        // Known names keep their label, whatever the outcome.
        assert_eq!(labels.label(Some(Some("Op3")), false), "Op3");
        assert_eq!(labels.label(Some(Some(&"x".repeat(65))), true), OTHER);
    }
}
