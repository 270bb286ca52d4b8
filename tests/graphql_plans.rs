//! Planned answers are async-graphql's answers: generated queries (fragments, aliases,
//! `@skip`/`@include`, `__typename`, arguments from variables, errors of every kind) are sent
//! over the socket, once as generated and once more with a trailing comment (the same
//! document, so answered from its plan when it has one, not from the kept answers), and each
//! answer is compared with async-graphql executing the same request on the same service.
//!
//! `PLANS_SEED` replays a run; `PLANS_QUERIES` sets how many queries are generated.

mod common;

use std::fmt::Write as _;

use callrec_gateway::http::graphql::{Credentials, schema};
use common::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "plans-password-1";

/// A generated query and its variables.
struct Generated {
    query: String,
    variables: serde_json::Map<String, Value>,
}

/// The object types a query can select, with their plain fields and object fields.
#[derive(Clone, Copy, PartialEq)]
enum Type {
    Query,
    List,
    Platform,
    Properties,
    Tenant,
    Group,
    Me,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Query => "Query",
            Type::List => "CallRecordingPlatformList",
            Type::Platform => "CallRecordingPlatform",
            Type::Properties => "CallRecordingProperties",
            Type::Tenant => "Tenant",
            Type::Group => "Group",
            Type::Me => "Me",
        }
    }

    fn leaves(self) -> &'static [&'static str] {
        match self {
            Type::Query => &[],
            Type::List => &["systemDefault"],
            Type::Platform => &[
                "name",
                "netAddress",
                "port",
                "mediaStream",
                "transportProtocol",
                "description",
                "schemaVersion",
                "supportVideoRecording",
                "isDefault",
            ],
            Type::Properties => &[
                "continueCallAfterRecordingFailure",
                "refreshPeriodSeconds",
                "maxConsecutiveFailures",
                "maxResponseWaitTimeMilliseconds",
                "continueCallAfterVideoRecordingFailure",
            ],
            Type::Tenant => &["tenantId"],
            Type::Group => &["tenantId", "groupId", "callRecordingPlatform"],
            Type::Me => &["username", "level", "tenantId", "groupId"],
        }
    }
}

struct Generator {
    rng: StdRng,
    fragments: Vec<String>,
    variables: serde_json::Map<String, Value>,
    declared: Vec<String>,
}

impl Generator {
    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    /// A variable holding `value`, declared with `ty`.
    fn variable(&mut self, ty: &str, value: Value) -> String {
        let name = format!("v{}", self.declared.len());
        self.declared.push(format!("${name}: {ty}"));
        self.variables.insert(name.clone(), value);
        format!("${name}")
    }

    fn directive(&mut self) -> String {
        if !self.chance(20) {
            return String::new();
        }
        let which = if self.chance(50) { "skip" } else { "include" };
        let condition = self.chance(50);
        let value = if self.chance(50) {
            condition.to_string()
        } else {
            self.variable("Boolean!", json!(condition))
        };
        format!(" @{which}(if: {value})")
    }

    fn alias(&mut self) -> String {
        if self.chance(25) {
            format!(
                "{}: ",
                ["a", "b", "c"].choose(&mut self.rng).expect("an alias")
            )
        } else {
            String::new()
        }
    }

    fn string_argument(&mut self, choices: &[&str]) -> String {
        let value = *choices.choose(&mut self.rng).expect("a value");
        if self.chance(40) {
            self.variable("String!", json!(value))
        } else {
            format!("{value:?}")
        }
    }

    /// A selection set on `ty`, with braces.
    fn selection(&mut self, ty: Type, depth: usize) -> String {
        let mut out = String::from("{ ");
        let items = self.rng.gen_range(1..=4);
        for _ in 0..items {
            let item = self.item(ty, depth);
            out += &item;
            out.push(' ');
        }
        out.push('}');
        out
    }

    fn item(&mut self, ty: Type, depth: usize) -> String {
        match self.rng.gen_range(0..100) {
            0..=9 => format!("{}__typename{}", self.alias(), self.directive()),
            10..=17 if depth < 3 => {
                let condition = if self.chance(70) {
                    format!(" on {}", ty.name())
                } else {
                    String::new()
                };
                let directive = self.directive();
                let inner = self.selection(ty, depth + 1);
                format!("...{condition}{directive} {inner}")
            }
            18..=25 if depth < 3 => {
                let name = format!("F{}", self.fragments.len());
                self.fragments.push(String::new());
                let index = self.fragments.len() - 1;
                let inner = self.selection(ty, depth + 1);
                self.fragments[index] = format!("fragment {name} on {} {inner}", ty.name());
                let directive = self.directive();
                format!("...{name}{directive}")
            }
            // Errors async-graphql finds: an unknown field, a fragment on another type.
            26 if self.chance(20) => "nope".into(),
            27 if ty != Type::Me && self.chance(20) => "... on Me { username }".into(),
            _ => self.field(ty, depth),
        }
    }

    fn field(&mut self, ty: Type, depth: usize) -> String {
        let alias = self.alias();
        // Arguments are generated for the field chosen only: a variable is declared when used.
        let objects: &[Type] = match ty {
            Type::Query => &[
                Type::List,
                Type::Platform,
                Type::Properties,
                Type::Tenant,
                Type::Tenant,
                Type::Group,
                Type::Group,
                Type::Me,
            ],
            Type::List => &[Type::Platform],
            Type::Tenant => &[Type::Group],
            _ => &[],
        };
        let leaves = ty.leaves();
        let take_object = !objects.is_empty() && (leaves.is_empty() || self.chance(40));
        if take_object && depth < 4 {
            let which = self.rng.gen_range(0..objects.len());
            let inner_ty = objects[which];
            let field = match (ty, which) {
                (Type::Query, 0) => "callRecordingPlatforms".into(),
                (Type::Query, 1) => {
                    let name = self.string_argument(&["P1", "P2", "Missing"]);
                    format!("callRecordingPlatform(name: {name})")
                }
                (Type::Query, 2) => "callRecordingProperties".into(),
                (Type::Query, 3) => "tenants".into(),
                (Type::Query, 4) => {
                    let tenant = self.string_argument(&["t1", "t2", "none"]);
                    format!("tenant(tenantId: {tenant})")
                }
                (Type::Query, 5) => {
                    let tenant = self.string_argument(&["t1", "t2"]);
                    format!("groups(tenantId: {tenant})")
                }
                (Type::Query, 6) => {
                    let tenant = self.string_argument(&["t1", "t2", "none"]);
                    let group = self.string_argument(&["g1", "g2", "none"]);
                    format!("group(tenantId: {tenant}, groupId: {group})")
                }
                (Type::Query, _) => "me".into(),
                (Type::List, _) => "platforms".into(),
                _ => "groups".into(),
            };
            let directive = self.directive();
            let inner = self.selection(inner_ty, depth + 1);
            format!("{alias}{field}{directive} {inner}")
        } else if !leaves.is_empty() {
            let leaf = *leaves.choose(&mut self.rng).expect("a leaf");
            // Fields a plan does not cover, now and then.
            let leaf = match (ty, self.rng.gen_range(0..30)) {
                (Type::Platform, 0) => "usage { groupId }",
                (Type::Platform, 1) => "reachability { state }",
                _ => leaf,
            };
            let directive = self.directive();
            format!("{alias}{leaf}{directive}")
        } else {
            "__typename".into()
        }
    }

    fn query(seed: u64) -> Generated {
        let mut g = Generator {
            rng: StdRng::seed_from_u64(seed),
            fragments: Vec::new(),
            variables: serde_json::Map::new(),
            declared: Vec::new(),
        };
        let body = g.selection(Type::Query, 0);
        let mut query = String::new();
        let named = g.chance(30);
        if named || !g.declared.is_empty() {
            query += "query";
            if named {
                query += " Dashboard";
            }
            if !g.declared.is_empty() {
                let _ = write!(query, "({})", g.declared.join(", "));
            }
            query.push(' ');
        }
        query += &body;
        for fragment in &g.fragments {
            query.push('\n');
            query += fragment;
        }
        Generated {
            query,
            variables: g.variables,
        }
    }
}

/// What async-graphql answers when it runs `request` itself, rendered as the server renders
/// it.
async fn direct(app: &TestApp, token: &str, generated: &Generated) -> Value {
    let request = async_graphql::Request::new(generated.query.clone())
        .variables(async_graphql::Variables::from_json(Value::Object(
            generated.variables.clone(),
        )))
        .data(Credentials::Token(token.to_owned()));
    let response = schema(app.service.clone()).execute(request).await;
    serde_json::to_value(&response).expect("JSON")
}

/// An answer without what the server adds to errors (their codes), its errors in a fixed
/// order (async-graphql's validation reports some in the order of a hash map).
fn comparable(mut answer: Value) -> Value {
    if let Some(errors) = answer.get_mut("errors").and_then(Value::as_array_mut) {
        for error in errors.iter_mut() {
            if let Some(object) = error.as_object_mut() {
                object.remove("extensions");
            }
        }
        errors.sort_by_key(|e| e.to_string());
    }
    answer
}

fn planned_answers(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("callrec_graphql_answers_total{source=\"planned\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn planned_answers_are_async_graphqls_answers() {
    let app = TestApp::start().await;
    for (name, tcp) in [("P1", false), ("P2", true), ("P3", false)] {
        let mut p = platform(name);
        if tcp {
            p["transportProtocol"] = json!("TCP");
            p["schemaVersion"] = json!("2.0");
            p["supportVideoRecording"] = json!(true);
            p["description"] = json!("a \"quoted\" \\ line, é ✓ </tag>");
            p.as_object_mut().expect("an object").remove("port");
        }
        let (status, body) = app.admin(Method::POST, &platforms_path(), Some(p)).await;
        assert!(status.is_success(), "{body}");
    }
    app.add_user("tenantadmin", PASSWORD, 12, Some("t1"), None)
        .await;
    app.add_user("groupadmin", PASSWORD, 8, Some("t1"), Some("g1"))
        .await;
    app.add_user("member", PASSWORD, 0, Some("t2"), Some("g2"))
        .await;
    app.gql_ok(
        "mutation { setGroupCallRecordingPlatform(tenantId: \"t1\", groupId: \"g1\", name: \"P2\") { groupId } }",
        json!({}),
    )
    .await;
    // The System Admin may read everything: most answers are its.
    let mut callers = vec![app.token.clone(), app.token.clone(), app.token.clone()];
    for user in ["tenantadmin", "groupadmin", "member"] {
        callers.push(app.login(user, PASSWORD).await);
    }

    let seed = seed_from_env("PLANS_SEED");
    let queries: u64 = from_env("PLANS_QUERIES", 300);
    eprintln!("PLANS_SEED={seed}");
    let before = planned_answers(&app.metrics().await.1);
    let (mut succeeded, mut failed) = (0, 0);
    for i in 0..queries {
        let generated = Generator::query(seed.wrapping_add(i));
        let token = &callers[(i % callers.len() as u64) as usize];
        let expected = direct(&app, token, &generated).await;
        let expected_bytes = serde_json::to_vec(&expected).expect("JSON");
        for text in [
            generated.query.clone(),
            format!("{}\n# the same document again", generated.query),
        ] {
            let response = app
                .client
                .post(app.url("/graphql"))
                .bearer_auth(token)
                .json(&json!({"query": text, "variables": generated.variables}))
                .send()
                .await
                .expect("sent");
            let bytes = response.bytes().await.expect("read");
            let got: Value = serde_json::from_slice(&bytes).expect("JSON");
            let context = format!(
                "PLANS_SEED={} query:\n{text}\nvariables: {:?}",
                seed.wrapping_add(i),
                generated.variables
            );
            if expected.get("errors").is_none() {
                // Byte for byte, field order included.
                assert_eq!(
                    String::from_utf8_lossy(&bytes),
                    String::from_utf8_lossy(&expected_bytes),
                    "{context}"
                );
            } else {
                assert_eq!(comparable(got), comparable(expected.clone()), "{context}");
            }
        }
        if expected.get("errors").is_none() {
            succeeded += 1;
        } else {
            failed += 1;
        }
    }
    let planned = planned_answers(&app.metrics().await.1) - before;
    eprintln!("{succeeded} answered, {failed} with errors, {planned} answers from plans");
    assert!(
        succeeded >= queries / 5 && failed >= queries / 10,
        "the generator covers answers and errors: {succeeded} answered, {failed} with errors"
    );
    assert!(
        planned >= succeeded / 4,
        "plans answered {planned} of {succeeded} answerable queries"
    );
}
