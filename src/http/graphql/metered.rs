//! The schema as an [`Executor`] that counts operations, for `POST /graphql` and the
//! WebSocket alike. Counting here, around each whole operation, rather than in a schema
//! extension keeps field resolution on async-graphql's fast path (an extension routes every
//! field through the extension chain).

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::CallRecordingSchema;
use crate::http::metrics;

/// Longest operation name kept as a metric label; longer names are cut.
pub const MAX_OPERATION_LABEL: usize = 64;

#[derive(Clone)]
pub struct Metered(pub CallRecordingSchema);

impl Executor for Metered {
    async fn execute(&self, request: Request) -> Response {
        let operation = operation_label(&request);
        let response = self.0.execute(request).await;
        metrics::graphql_operation(operation, response.is_ok());
        response
    }

    /// A stream (a subscription, or any operation over the WebSocket) is counted once, by its
    /// first response: an error there means the operation was refused.
    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let operation = Some(operation_label(&request));
        self.0
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .scan(operation, |operation, response| {
                if let Some(operation) = operation.take() {
                    metrics::graphql_operation(operation, response.is_ok());
                }
                std::future::ready(Some(response))
            })
            .boxed()
    }
}

/// The operation's name for the metric label: `operationName` when given, else the name of
/// the document's first operation; `anonymous` when it has none. Only `[A-Za-z0-9_]` are
/// kept (others become `_`) and the name is cut at [`MAX_OPERATION_LABEL`], so a client
/// cannot put arbitrary text into a label.
pub fn operation_label(request: &Request) -> String {
    let name = match &request.operation_name {
        Some(name) => Some(name.as_str()),
        None => first_operation_name(&request.query),
    };
    let label: String = name
        .unwrap_or_default()
        .chars()
        .take(MAX_OPERATION_LABEL)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if label.is_empty() {
        "anonymous".into()
    } else {
        label
    }
}

/// The name of the first operation of a GraphQL document, found by a lexical scan (no parse):
/// the name after a top-level `query`, `mutation` or `subscription`. `None` when the first
/// operation is anonymous (`{ ... }`, `query { ... }`), or the document has none.
pub fn first_operation_name(document: &str) -> Option<&str> {
    const BLOCK_QUOTE: &[u8] = b"\"\"\"";
    let bytes = document.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut after_keyword = false;
    let mut in_fragment = false;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(BLOCK_QUOTE) => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(BLOCK_QUOTE) {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'(' | b'[' | b'@' => {
                if depth == 0 {
                    if after_keyword || (bytes[i] == b'{' && !in_fragment) {
                        return None;
                    }
                    if bytes[i] == b'{' {
                        in_fragment = false;
                    }
                }
                if bytes[i] != b'@' {
                    depth += 1;
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                if depth > 0 {
                    continue;
                }
                let name = &document[start..i];
                if after_keyword {
                    return Some(name);
                }
                match name {
                    "query" | "mutation" | "subscription" => after_keyword = true,
                    "fragment" => in_fragment = true,
                    _ => {}
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_operation_is_named_from_the_document() {
        let cases = [
            (
                "query Platforms { callRecordingPlatforms { systemDefault } }",
                Some("Platforms"),
            ),
            (
                "  # a comment: query Nope\n mutation AddOne($i: X = \"{\") { a }",
                Some("AddOne"),
            ),
            (
                "subscription\nWatch{callRecordingEvents{__typename}}",
                Some("Watch"),
            ),
            (
                "fragment F on Query { me { username } } query Named { ...F }",
                Some("Named"),
            ),
            (
                "\"\"\"query Doc\"\"\" query Real { me { username } }",
                Some("Real"),
            ),
            ("{ me { username } }", None),
            ("query { me { username } }", None),
            ("query ($a: Int) { me { username } }", None),
            ("query @skip(if: true) { me { username } }", None),
            (
                "{ query: me { username } } query Later { me { username } }",
                None,
            ),
            ("", None),
            ("query \"é\u{1F600}\\\"{ query Q { a }", None),
            ("\"\"\"é unterminated", None),
        ];
        for (document, name) in cases {
            assert_eq!(first_operation_name(document), name, "{document}");
        }
    }

    #[test]
    fn labels_are_bounded() {
        let request = |query: &str, name: Option<&str>| {
            let r = Request::new(query);
            match name {
                Some(n) => r.operation_name(n),
                None => r,
            }
        };
        assert_eq!(
            operation_label(&request("{ me { username } }", None)),
            "anonymous"
        );
        assert_eq!(operation_label(&request("query Q { a }", None)), "Q");
        assert_eq!(
            operation_label(&request("query Q { a }", Some("Given"))),
            "Given"
        );
        assert_eq!(
            operation_label(&request("{ a }", Some("a b\"}{é"))),
            "a_b____"
        );
        let long = "x".repeat(500);
        assert_eq!(
            operation_label(&request("{ a }", Some(&long))).len(),
            MAX_OPERATION_LABEL
        );
    }
}
