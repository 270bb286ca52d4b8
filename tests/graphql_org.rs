//! Tenants, groups and a group's call recording platform through GraphQL: every query and
//! mutation, their refusals with the same codes as REST, and authorization at each level.

mod common;

use common::graphql::*;
use common::*;
use serde_json::{Value, json};

const GROUP: &str = "tenantId groupId callRecordingPlatform";

async fn add_tenant(app: &TestApp, tenant: &str) {
    let data = app
        .gql_ok(
            "mutation($t: String!) { addTenant(tenantId: $t) { tenantId groups { groupId } } }",
            json!({"t": tenant}),
        )
        .await;
    assert_eq!(data["addTenant"], json!({"tenantId": tenant, "groups": []}));
}

async fn add_group(app: &TestApp, tenant: &str, group: &str) {
    let data = app
        .gql_ok(
            &format!(
                "mutation($t: String!, $g: String!) {{ addGroup(tenantId: $t, groupId: $g) {{ {GROUP} }} }}"
            ),
            json!({"t": tenant, "g": group}),
        )
        .await;
    assert_eq!(
        data["addGroup"],
        json!({"tenantId": tenant, "groupId": group, "callRecordingPlatform": null})
    );
}

/// A server holding tenant t1 with group g1.
async fn with_group_t1_g1() -> TestApp {
    let app = TestApp::start().await;
    add_tenant(&app, "t1").await;
    add_group(&app, "t1", "g1").await;
    app
}

const SET: &str = "mutation($t: String!, $g: String!, $n: String) {
  setGroupCallRecordingPlatform(tenantId: $t, groupId: $g, name: $n) { tenantId groupId callRecordingPlatform } }";

/// `setGroupCallRecordingPlatform` as `token`, with `name` (null clears).
async fn set(app: &TestApp, token: &str, tenant: &str, group: &str, name: Value) -> Value {
    app.gql_as(
        Some(token),
        SET,
        json!({"t": tenant, "g": group, "n": name}),
    )
    .await
}

#[tokio::test]
async fn tenants_and_groups_are_added_listed_and_deleted() {
    let app = TestApp::start().await;
    add_tenant(&app, "t1").await;
    add_tenant(&app, "t0").await;
    add_group(&app, "t1", "g2").await;
    add_group(&app, "t1", "g1").await;

    let data = app
        .gql_ok(
            &format!("{{ tenants {{ tenantId groups {{ {GROUP} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        data["tenants"],
        json!([
            {"tenantId": "t0", "groups": []},
            {"tenantId": "t1", "groups": [
                {"tenantId": "t1", "groupId": "g1", "callRecordingPlatform": null},
                {"tenantId": "t1", "groupId": "g2", "callRecordingPlatform": null}
            ]}
        ])
    );

    let data = app
        .gql_ok(
            &format!(
                "{{ one: tenant(tenantId: \"t1\") {{ tenantId }} none: tenant(tenantId: \"nope\") {{ tenantId }}
                   groups(tenantId: \"t1\") {{ groupId }}
                   g: group(tenantId: \"t1\", groupId: \"g1\") {{ {GROUP} }}
                   missing: group(tenantId: \"t1\", groupId: \"nope\") {{ groupId }} }}"
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        data,
        json!({
            "one": {"tenantId": "t1"},
            "none": null,
            "groups": [{"groupId": "g1"}, {"groupId": "g2"}],
            "g": {"tenantId": "t1", "groupId": "g1", "callRecordingPlatform": null},
            "missing": null
        })
    );

    // A tenant with groups stays; its groups go one by one, then the tenant.
    let body = app
        .gql(
            "mutation { deleteTenant(tenantId: \"t1\") { tenantId } }",
            json!({}),
        )
        .await;
    let error = assert_error(&body, "NOT_DELETED", Some(21));
    assert!(
        error["message"].as_str().unwrap().contains("2 groups"),
        "{error}"
    );
    for g in ["g1", "g2"] {
        let data = app
            .gql_ok(
                "mutation($g: String!) { deleteGroup(tenantId: \"t1\", groupId: $g) { tenantId groupId } }",
                json!({"g": g}),
            )
            .await;
        assert_eq!(data["deleteGroup"], json!({"tenantId": "t1", "groupId": g}));
    }
    let data = app
        .gql_ok(
            "mutation { deleteTenant(tenantId: \"t1\") { tenantId } }",
            json!({}),
        )
        .await;
    assert_eq!(data["deleteTenant"], json!({"tenantId": "t1"}));
    let data = app.gql_ok("{ tenants { tenantId } }", json!({})).await;
    assert_eq!(data["tenants"], json!([{"tenantId": "t0"}]));
    app.stop().await;
}

#[tokio::test]
async fn refusals_carry_the_rest_codes() {
    let app = with_group_t1_g1().await;

    let cases: [(&str, &str, u64); 9] = [
        (
            "mutation { addTenant(tenantId: \"t1\") { tenantId } }",
            "ALREADY_EXISTS",
            11,
        ),
        (
            "mutation { addGroup(tenantId: \"t1\", groupId: \"g1\") { groupId } }",
            "ALREADY_EXISTS",
            11,
        ),
        (
            "mutation { addGroup(tenantId: \"nope\", groupId: \"g1\") { groupId } }",
            "INVALID_OPERATION",
            18,
        ),
        (
            "mutation { deleteTenant(tenantId: \"nope\") { tenantId } }",
            "INVALID_OPERATION",
            18,
        ),
        (
            "mutation { deleteGroup(tenantId: \"t1\", groupId: \"nope\") { groupId } }",
            "INVALID_OPERATION",
            18,
        ),
        (
            "mutation { setGroupCallRecordingPlatform(tenantId: \"t1\", groupId: \"nope\", name: null) { groupId } }",
            "INVALID_OPERATION",
            18,
        ),
        (
            "mutation { setGroupCallRecordingPlatform(tenantId: \"t1\", groupId: \"g1\", name: \"Missing\") { groupId } }",
            "INVALID_OPERATION",
            18,
        ),
        (
            "{ groups(tenantId: \"nope\") { groupId } }",
            "NOT_FOUND",
            101,
        ),
        (
            "mutation { addTenant(tenantId: \"0123456789012345678901234567890\") { tenantId } }",
            "INVALID_VALUE",
            100,
        ),
    ];
    for (query, code, number) in cases {
        let body = app.gql(query, json!({})).await;
        assert_error(&body, code, Some(number));
        assert!(body["data"].is_null(), "{query}: {body}");
    }

    // Leaving `name` out is refused, naming the field, rather than read as a removal.
    let body = app
        .gql(
            "mutation { setGroupCallRecordingPlatform(tenantId: \"t1\", groupId: \"g1\") { groupId } }",
            json!({}),
        )
        .await;
    let error = assert_error(&body, "INVALID_VALUE", Some(100));
    assert_eq!(error["extensions"]["field"], "name");

    // Without a token, nothing.
    for query in [
        "{ tenants { tenantId } }",
        "{ group(tenantId: \"t1\", groupId: \"g1\") { groupId } }",
        "mutation { addTenant(tenantId: \"t2\") { tenantId } }",
    ] {
        let body = app.gql_as(None, query, json!({})).await;
        assert_error(&body, "UNAUTHENTICATED", Some(102));
    }
    app.stop().await;
}

#[tokio::test]
async fn assignment_is_shown_on_the_group_and_in_usage() {
    let app = with_group_t1_g1().await;
    app.gql_add_platform("A").await;
    app.gql_add_platform("B").await;
    let token = app.token.clone();

    let body = set(&app, &token, "t1", "g1", json!("A")).await;
    assert_eq!(
        body["data"]["setGroupCallRecordingPlatform"],
        json!({"tenantId": "t1", "groupId": "g1", "callRecordingPlatform": "A"}),
        "{body}"
    );
    let usage = "{ a: callRecordingPlatform(name: \"A\") { usage { tenantId groupId } }
                   b: callRecordingPlatform(name: \"B\") { usage { tenantId groupId } }
                   group(tenantId: \"t1\", groupId: \"g1\") { callRecordingPlatform } }";
    let data = app.gql_ok(usage, json!({})).await;
    assert_eq!(
        data,
        json!({"a": {"usage": [{"tenantId": "t1", "groupId": "g1"}]}, "b": {"usage": []},
               "group": {"callRecordingPlatform": "A"}})
    );

    // The platform in use cannot go, as in REST.
    let body = app
        .gql(
            "mutation { deleteCallRecordingPlatform(name: \"A\") { name } }",
            json!({}),
        )
        .await;
    assert_error(&body, "NOT_DELETED", Some(21));

    // Moving to B, then clearing.
    set(&app, &token, "t1", "g1", json!("B")).await;
    let data = app.gql_ok(usage, json!({})).await;
    assert_eq!(data["a"]["usage"], json!([]));
    assert_eq!(
        data["b"]["usage"],
        json!([{"tenantId": "t1", "groupId": "g1"}])
    );
    let body = set(&app, &token, "t1", "g1", Value::Null).await;
    assert_eq!(
        body["data"]["setGroupCallRecordingPlatform"]["callRecordingPlatform"],
        Value::Null,
        "{body}"
    );
    let data = app.gql_ok(usage, json!({})).await;
    assert_eq!(data["b"]["usage"], json!([]));
    assert_eq!(data["group"]["callRecordingPlatform"], Value::Null);

    // The REST view agrees.
    let (status, rest) = app
        .get("/api/v1/tenants/t1/groups/g1/services/call_recording/")
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(rest.get("name").is_none_or(Value::is_null), "{rest}");
    app.stop().await;
}

#[tokio::test]
async fn each_level_acts_only_within_its_scope() {
    let app = TestApp::start().await;
    app.gql_add_platform("A").await;
    let tenant_admin = app.user_token("tadmin", 12, Some("t1"), None).await;
    let group_admin = app.user_token("gadmin", 8, Some("t1"), Some("g1")).await;
    let other_group_admin = app.user_token("gadmin2", 8, Some("t1"), Some("g2")).await;
    let end_user = app.user_token("user", 0, Some("t1"), Some("g1")).await;
    add_tenant(&app, "t2").await;
    add_group(&app, "t2", "g1").await;

    let forbidden = |body: Value| {
        assert_error(&body, "FORBIDDEN", Some(103));
        assert!(body["data"].is_null(), "{body}");
    };
    let tenant_of_t1 = "{ tenant(tenantId: \"t1\") { tenantId groups { groupId } } }";
    let groups_of_t1 = "{ groups(tenantId: \"t1\") { groupId } }";
    let g1 =
        "{ group(tenantId: \"t1\", groupId: \"g1\") { tenantId groupId callRecordingPlatform } }";

    // A Tenant Admin: its own tenant and its groups, nothing else.
    let as_tenant_admin =
        async |query: &str| app.gql_as(Some(&tenant_admin), query, json!({})).await;
    let body = as_tenant_admin(tenant_of_t1).await;
    assert_eq!(
        body["data"]["tenant"],
        json!({"tenantId": "t1", "groups": [{"groupId": "g1"}, {"groupId": "g2"}]}),
        "{body}"
    );
    let body = as_tenant_admin(groups_of_t1).await;
    assert_eq!(
        body["data"]["groups"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    let body =
        as_tenant_admin("mutation { addGroup(tenantId: \"t1\", groupId: \"g3\") { groupId } }")
            .await;
    assert_eq!(body["data"]["addGroup"]["groupId"], "g3", "{body}");
    let body = set(&app, &tenant_admin, "t1", "g3", json!("A")).await;
    assert_eq!(
        body["data"]["setGroupCallRecordingPlatform"]["callRecordingPlatform"], "A",
        "{body}"
    );
    let body =
        as_tenant_admin("mutation { deleteGroup(tenantId: \"t1\", groupId: \"g3\") { groupId } }")
            .await;
    assert_eq!(body["data"]["deleteGroup"]["groupId"], "g3", "{body}");
    for query in [
        "{ tenants { tenantId } }",
        "{ tenant(tenantId: \"t2\") { tenantId } }",
        "{ groups(tenantId: \"t2\") { groupId } }",
        "{ group(tenantId: \"t2\", groupId: \"g1\") { groupId } }",
        "mutation { addTenant(tenantId: \"t3\") { tenantId } }",
        "mutation { deleteTenant(tenantId: \"t1\") { tenantId } }",
        "mutation { addGroup(tenantId: \"t2\", groupId: \"g9\") { groupId } }",
        "mutation { deleteGroup(tenantId: \"t2\", groupId: \"g1\") { groupId } }",
    ] {
        forbidden(as_tenant_admin(query).await);
    }
    forbidden(set(&app, &tenant_admin, "t2", "g1", json!("A")).await);

    // A Group Admin: reads and assigns its own group only.
    let body = app.gql_as(Some(&group_admin), g1, json!({})).await;
    assert_eq!(
        body["data"]["group"],
        json!({"tenantId": "t1", "groupId": "g1", "callRecordingPlatform": null}),
        "{body}"
    );
    let body = set(&app, &group_admin, "t1", "g1", json!("A")).await;
    assert_eq!(
        body["data"]["setGroupCallRecordingPlatform"],
        json!({"tenantId": "t1", "groupId": "g1", "callRecordingPlatform": "A"}),
        "{body}"
    );
    let body = set(&app, &group_admin, "t1", "g1", Value::Null).await;
    assert!(body.get("errors").is_none(), "{body}");
    for query in [
        tenant_of_t1,
        groups_of_t1,
        "{ tenants { tenantId } }",
        "{ group(tenantId: \"t1\", groupId: \"g2\") { groupId } }",
        "mutation { addGroup(tenantId: \"t1\", groupId: \"g9\") { groupId } }",
        "mutation { deleteGroup(tenantId: \"t1\", groupId: \"g1\") { groupId } }",
        "mutation { addTenant(tenantId: \"t3\") { tenantId } }",
    ] {
        forbidden(app.gql_as(Some(&group_admin), query, json!({})).await);
    }
    // The Group Admin of another group may not touch g1.
    forbidden(app.gql_as(Some(&other_group_admin), g1, json!({})).await);
    forbidden(set(&app, &other_group_admin, "t1", "g1", json!("A")).await);
    // Nor may a group admin of g1 in t1 reach g1 of t2.
    forbidden(set(&app, &group_admin, "t2", "g1", json!("A")).await);

    // An End User: nothing.
    forbidden(app.gql_as(Some(&end_user), g1, json!({})).await);
    forbidden(set(&app, &end_user, "t1", "g1", json!("A")).await);
    app.stop().await;
}
