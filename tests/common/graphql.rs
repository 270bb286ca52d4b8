//! GraphQL over the test server: POST /graphql with a token, and a WebSocket client.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::TestApp;

/// Every field of a platform, as a selection.
pub const PLATFORM_FIELDS: &str = "name netAddress port mediaStream transportProtocol description \
     schemaVersion supportVideoRecording isDefault usage { tenantId groupId }";

/// An `AddCallRecordingPlatformInput` for the documented example platform.
pub fn platform_input(name: &str) -> Value {
    json!({
        "name": name,
        "netAddress": "10.0.32.55",
        "port": 222,
        "mediaStream": "DUAL",
        "transportProtocol": "UDP",
        "description": "test description",
        "schemaVersion": "V1_0",
        "supportVideoRecording": false
    })
}

/// What `PLATFORM_FIELDS` of the platform added with `platform_input(name)` look like.
pub fn platform_output(name: &str, is_default: bool) -> Value {
    let mut output = platform_input(name);
    output["isDefault"] = json!(is_default);
    output["usage"] = json!([]);
    output
}

/// The extensions of the only error of a response, checking there is exactly one.
pub fn only_error(body: &Value) -> &Value {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("errors expected: {body}"));
    assert_eq!(errors.len(), 1, "one error expected: {body}");
    &errors[0]
}

/// Checks the only error's `extensions.code` and `extensions.subErrorCode`.
pub fn assert_error(body: &Value, code: &str, sub_error_code: Option<u64>) -> Value {
    let error = only_error(body);
    assert_eq!(error["extensions"]["code"], code, "{body}");
    match sub_error_code {
        Some(n) => assert_eq!(error["extensions"]["subErrorCode"], n, "{body}"),
        None => assert!(error["extensions"].get("subErrorCode").is_none(), "{body}"),
    }
    error.clone()
}

impl TestApp {
    /// POSTs a raw body to /graphql.
    pub async fn gql_body(&self, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, "/graphql", token, Some(body)).await
    }

    /// Runs one operation and returns the response body; the HTTP status must be 200.
    pub async fn gql_as(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let (status, body) = self
            .gql_body(token, json!({"query": query, "variables": variables}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// As the admin.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        let token = self.token.clone();
        self.gql_as(Some(&token), query, variables).await
    }

    /// Adds platform `name` (the fields of `platform_input`) over GraphQL, as the admin.
    pub async fn gql_add_platform(&self, name: &str) {
        self.gql_ok(
            "mutation($i: AddCallRecordingPlatformInput!) { addCallRecordingPlatform(input: $i) { name } }",
            json!({"i": platform_input(name)}),
        )
        .await;
    }

    /// As the admin, expecting no errors; returns `data`.
    pub async fn gql_ok(&self, query: &str, variables: Value) -> Value {
        let body = self.gql(query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Creates a local user through REST and returns its access token.
    pub async fn user_token(
        &self,
        username: &str,
        level: u8,
        tenant: Option<&str>,
        group: Option<&str>,
    ) -> String {
        let password = "user-password-1";
        self.add_user(username, password, level, tenant, group)
            .await;
        self.login(username, password).await
    }

    /// A Group Admin of t1/g1.
    pub async fn group_admin_token(&self) -> String {
        self.user_token("groupadmin", 8, Some("t1"), Some("g1"))
            .await
    }
}

/// Adds `n` platforms, `P00000`, `P00001`..., through the service, many at a time so that
/// they share the store's flushes.
pub async fn add_platforms(service: &std::sync::Arc<callrec_gateway::service::Service>, n: usize) {
    add_platforms_from(service, 0, n).await;
}

/// Adds `n` platforms numbered from `first`, as [`add_platforms`].
pub async fn add_platforms_from(
    service: &std::sync::Arc<callrec_gateway::service::Service>,
    first: usize,
    n: usize,
) {
    use callrec_gateway::model::{
        MediaStream, NewPlatform, Principal, SchemaVersion, TransportProtocol,
    };
    let who = Principal::console();
    for chunk in (first..first + n).collect::<Vec<_>>().chunks(250) {
        let adds = chunk.iter().map(|i| {
            service.add_platform(
                &who,
                NewPlatform {
                    name: format!("P{i:05}"),
                    net_address: "10.0.32.55".into(),
                    port: Some(222),
                    media_stream: MediaStream::Dual,
                    transport_protocol: TransportProtocol::Udp,
                    description: Some("a platform added in bulk".into()),
                    schema_version: SchemaVersion::V1_0,
                    support_video_recording: false,
                },
            )
        });
        for added in futures_util::future::join_all(adds).await {
            added.expect("platform added");
        }
    }
}
