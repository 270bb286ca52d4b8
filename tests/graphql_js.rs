//! graphql-js, the reference implementation that GraphiQL, Apollo tooling and code generators
//! use, validates against the served schema every GraphQL document that README, the dashboard
//! and the tests send. Those documents are collected from README's code blocks, the
//! dashboard's script, `tests/documents/`, and the string literals of the tests that parse as
//! GraphQL documents.
//!
//! README's documents, the dashboard's and `tests/documents/` must be valid. A test may send a document on
//! purpose that the server refuses (an unknown field, a wrong argument): graphql-js may refuse
//! those too. What must never happen is a document graphql-js refuses and the server runs,
//! as once a subscription selecting `platform` from two events where it had two types.
//!
//! `.ci/run` installs graphql-js (`npm install --no-save --prefix target/node graphql@16.15.0`);
//! elsewhere, without node or that package, the test says how to get them and passes.

use std::path::{Path, PathBuf};

use async_graphql::parser::parse_query;
use async_graphql::{Request, Schema};
use callrec_gateway::http::graphql::{MutationRoot, QueryRoot, SubscriptionRoot, sdl};
use futures_util::StreamExt;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn modules() -> PathBuf {
    Path::new(ROOT).join("target/node/node_modules")
}

fn installed() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    node && modules().join("graphql/package.json").is_file()
}

/// What graphql-js says of each document: its messages, empty when it is valid.
fn graphql_js(documents: &[String]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = dir.path().join("schema.graphql");
    std::fs::write(&schema, sdl()).expect("schema written");
    let list = dir.path().join("documents.json");
    std::fs::write(&list, serde_json::to_vec(documents).unwrap()).expect("documents written");
    let output = std::process::Command::new("node")
        .arg(Path::new(ROOT).join("tests/graphql_js/validate.cjs"))
        .arg(modules())
        .arg(&schema)
        .arg(&list)
        .output()
        .expect("node runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON answer")
}

/// Whether the server refuses `document` before running it (parse or validation errors
/// have no `path`; a resolver's error, here for want of a service, has one).
async fn server_refuses(document: &str) -> bool {
    let schema = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot).finish();
    let first = schema
        .execute_stream(Request::new(document))
        .next()
        .await
        .unwrap_or_default();
    first.errors.iter().any(|e| e.path.is_empty())
}

/// Documents in README's fenced code blocks: whole ```graphql blocks, and the
/// `"query": "..."` strings of the others.
fn readme_documents() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README");
    let mut documents = Vec::new();
    let mut block: Option<(String, String)> = None;
    for line in readme.lines() {
        match (&mut block, line.strip_prefix("```")) {
            (None, Some(lang)) => block = Some((lang.trim().to_owned(), String::new())),
            (Some((lang, text)), Some(_)) => {
                if lang == "graphql" {
                    documents.push(std::mem::take(text));
                } else {
                    documents.extend(query_strings(text));
                }
                block = None;
            }
            (Some((_, text)), None) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, None) => {}
        }
    }
    documents
}

/// The JSON strings after `"query":` in `text`.
fn query_strings(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("\"query\"") {
        rest = rest[at + 7..].trim_start();
        let Some(after) = rest.strip_prefix(':') else {
            continue;
        };
        let mut stream = serde_json::Deserializer::from_str(after.trim_start()).into_iter();
        if let Some(Ok(serde_json::Value::String(query))) = stream.next() {
            found.push(query);
        }
        rest = after;
    }
    found
}

/// The string literals of Rust source: "...", r"...", r#"..."# (byte strings and chars
/// skipped), with escapes and line continuations resolved.
fn rust_strings(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut strings = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\'' => {
                // A char literal ('x', '\n', '\'') or a lifetime ('a).
                if chars.get(i + 1) == Some(&'\\') {
                    i += 2;
                    while i < chars.len() && chars[i] != '\'' {
                        i += 1;
                    }
                    i += 1;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 3;
                } else {
                    i += 1;
                }
            }
            'b' if chars.get(i + 1) == Some(&'"') => {
                i += 2;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            'r' if matches!(chars.get(i + 1), Some('"' | '#'))
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                let start = j + 1;
                let mut end = start;
                loop {
                    if end >= chars.len() {
                        break;
                    }
                    if chars[end] == '"'
                        && (0..hashes).all(|h| chars.get(end + 1 + h) == Some(&'#'))
                    {
                        break;
                    }
                    end += 1;
                }
                strings.push(chars[start..end.min(chars.len())].iter().collect());
                i = end + 1 + hashes;
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                        match chars.get(i) {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some('r') => text.push('\r'),
                            Some('0') => text.push('\0'),
                            Some('\n') => {
                                while chars.get(i + 1).is_some_and(|c| c.is_whitespace()) {
                                    i += 1;
                                }
                            }
                            Some('u') => {
                                let close = (i..chars.len()).find(|&k| chars[k] == '}');
                                if let Some(close) = close {
                                    let hex: String = chars[i + 2..close].iter().collect();
                                    if let Some(c) =
                                        u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
                                    {
                                        text.push(c);
                                    }
                                    i = close;
                                }
                            }
                            Some(c) => text.push(*c),
                            None => {}
                        }
                    } else {
                        text.push(chars[i]);
                    }
                    i += 1;
                }
                strings.push(text);
                i += 1;
            }
            _ => i += 1,
        }
    }
    strings
}

/// `literal` as the GraphQL document it holds, if it holds one (format strings with their
/// doubled braces undone).
fn as_document(literal: &str) -> Option<String> {
    let looks_like = |text: &str| {
        let start = text.trim_start();
        ["{", "query", "mutation", "subscription", "fragment"]
            .iter()
            .any(|p| start.starts_with(p))
    };
    if !looks_like(literal) {
        return None;
    }
    let text = if literal.contains("{{") || literal.contains("}}") {
        literal.replace("{{", "{").replace("}}", "}")
    } else {
        literal.to_owned()
    };
    let document = parse_query(&text).ok()?;
    document.operations.iter().next().is_some().then_some(text)
}

/// Every document the tests send, by file.
fn test_documents() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["tests", "tests/common"] {
        for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).expect("tests folder") {
            let path = entry.expect("entry").path();
            // This file's own example is deliberately refused by graphql-js.
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("graphql_js.rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut documents = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("readable");
        let name = file
            .strip_prefix(ROOT)
            .unwrap_or(&file)
            .display()
            .to_string();
        for literal in rust_strings(&source) {
            if let Some(document) = as_document(&literal) {
                documents.push((name.clone(), document));
            }
        }
    }
    documents
}

/// The documents the dashboard sends: its script's template literals assigned to constants
/// (`const NAME = `...``), which hold every operation it runs.
fn dashboard_documents() -> Vec<(String, String)> {
    let path = "src/http/dashboard/dashboard.js";
    let script = std::fs::read_to_string(Path::new(ROOT).join(path)).expect("the dashboard");
    let mut documents = Vec::new();
    for part in script.split("= `").skip(1) {
        let literal = part.split('`').next().unwrap_or_default();
        if let Some(document) = as_document(literal) {
            documents.push((path.to_owned(), document));
        }
    }
    documents
}

fn documents_folder() -> Vec<(String, String)> {
    let mut documents = Vec::new();
    let dir = Path::new(ROOT).join("tests/documents");
    for entry in std::fs::read_dir(dir).expect("tests/documents") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "graphql") {
            let text = std::fs::read_to_string(&path).expect("readable");
            documents.push((path.display().to_string(), text));
        }
    }
    documents
}

#[test]
fn rust_literals_are_read_as_written() {
    let source = r##"let a = "{ me { username } }"; // "not this"
        let b = 'x'; let c: &'static str = r#"query Q { me { "level" } }"#;
        let d = "mutation { a(x: \"y\") \
                 { b } }"; let e = format!("{{ me {{ {f} }} }}");"##;
    let strings = rust_strings(source);
    assert_eq!(
        strings,
        [
            "{ me { username } }",
            "query Q { me { \"level\" } }",
            "mutation { a(x: \"y\") { b } }",
            "{{ me {{ {f} }} }}",
        ]
    );
    // A format string with a placeholder in a selection is not a document.
    assert_eq!(as_document(&strings[3]), None);
    assert_eq!(
        as_document("{{ me {{ username }} }}").as_deref(),
        Some("{ me { username } }")
    );
    assert!(as_document("not graphql").is_none());
}

#[tokio::test]
async fn graphql_js_accepts_every_document_the_server_runs() {
    if !installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "node or graphql-js is missing in CI"
        );
        eprintln!(
            "skipped: install node and `npm install --no-save --prefix target/node graphql@16.15.0`"
        );
        return;
    }
    let readme = readme_documents();
    let folder = documents_folder();
    let tests = test_documents();
    let dashboard = dashboard_documents();
    assert!(!readme.is_empty(), "README shows GraphQL documents");
    assert!(
        dashboard.len() >= 10,
        "the dashboard's documents: {dashboard:#?}"
    );
    assert!(!folder.is_empty());
    assert!(tests.len() > 100, "only {} documents found", tests.len());

    // The check can fail: a document graphql-js refuses (two members' `name` with different
    // types) while the server runs it.
    let clash = "subscription { callRecordingEvents { \
        ... on CallRecordingPlatformAdded { name: platform { name } } \
        ... on CallRecordingPlatformDeleted { name } } }";

    let mut all: Vec<(String, String)> = Vec::new();
    all.extend(readme.into_iter().map(|d| ("README.md".to_owned(), d)));
    all.extend(folder);
    all.extend(tests);
    all.extend(dashboard);
    all.push(("(the check's own example)".to_owned(), clash.to_owned()));
    let texts: Vec<String> = all.iter().map(|(_, d)| d.clone()).collect();
    let verdicts = graphql_js(&texts);
    assert_eq!(verdicts.len(), all.len());

    let mut refused_but_run = Vec::new();
    let mut checked = 0;
    for ((origin, document), messages) in all.iter().zip(&verdicts) {
        checked += 1;
        let must_be_valid = origin == "README.md"
            || origin.contains("tests/documents")
            || origin.contains("src/http/dashboard");
        if messages.is_empty() {
            continue;
        }
        assert!(
            !must_be_valid,
            "graphql-js refuses a document of {origin}: {messages:?}\n{document}"
        );
        if !server_refuses(document).await {
            refused_but_run.push((origin.clone(), document.clone(), messages.clone()));
        }
    }
    assert_eq!(
        refused_but_run.len(),
        1,
        "graphql-js refuses documents the server runs: {refused_but_run:#?}"
    );
    assert_eq!(refused_but_run[0].1, clash);
    eprintln!("{checked} documents validated by graphql-js");
}
