//! Tenants, groups and a group's call recording platform through a real socket.

mod common;

use std::collections::BTreeSet;

use callrec_gateway::service::Event;
use common::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TENANTS: &str = "/api/v1/tenants/";

fn tenant_path(t: &str) -> String {
    format!("{TENANTS}{}/", encode(t))
}

fn groups_path(t: &str) -> String {
    format!("{}groups/", tenant_path(t))
}

fn group_path(t: &str, g: &str) -> String {
    format!("{}{}/", groups_path(t), encode(g))
}

fn assignment_path(t: &str, g: &str) -> String {
    format!("{}services/call_recording/", group_path(t, g))
}

fn usage_path(name: &str) -> String {
    format!("{}usage/", platform_path(name))
}

/// The error body's code, name and (when present) field.
fn error_of(body: &Value) -> (u64, String, Option<String>) {
    let e = &body["errors"][0];
    (
        e["code"].as_u64().unwrap_or(0),
        e["name"].as_str().unwrap_or("").to_owned(),
        e["details"]["field"].as_str().map(str::to_owned),
    )
}

fn message_of(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

async fn add_tenant(app: &TestApp, t: &str) {
    let (s, body) = app
        .admin(Method::POST, TENANTS, Some(json!({"tenantId": t})))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

async fn add_group(app: &TestApp, t: &str, g: &str) {
    let (s, body) = app
        .admin(Method::POST, &groups_path(t), Some(json!({"groupId": g})))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

async fn add_tenant_with_groups(app: &TestApp, t: &str, groups: &[&str]) {
    add_tenant(app, t).await;
    for g in groups {
        add_group(app, t, g).await;
    }
}

async fn add_platform(app: &TestApp, name: &str) {
    let (s, body) = app
        .admin(Method::POST, &platforms_path(), Some(platform(name)))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
}

/// Creates a user through the user API and logs it in.
async fn user(app: &TestApp, name: &str, level: u8, t: Option<&str>, g: Option<&str>) -> String {
    let (s, body) = app
        .admin(
            Method::POST,
            "/api/v1/local/users/",
            Some(json!({"username": name, "password": "password-1234",
                        "userLevel": level, "tenantId": t, "groupId": g})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    app.login(name, "password-1234").await
}

async fn assign(
    app: &TestApp,
    token: &str,
    t: &str,
    g: &str,
    name: Option<&str>,
) -> (StatusCode, Value) {
    app.call(
        Method::PUT,
        &assignment_path(t, g),
        Some(token),
        Some(json!({ "name": name })),
    )
    .await
}

/// A platform's usage as a set of (tenant, group).
async fn usage(app: &TestApp, name: &str) -> BTreeSet<(String, String)> {
    let (s, body) = app.get(&usage_path(name)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            assert_eq!(g.as_object().map(|o| o.len()), Some(2), "{g}");
            (
                g["tenantId"].as_str().expect("tenantId").to_owned(),
                g["groupId"].as_str().expect("groupId").to_owned(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(t, g)| (t.to_string(), g.to_string()))
        .collect()
}

/// As the admin: the status and the error body's code (0 when there is none).
async fn admin_code(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, u64) {
    let (s, body) = app.admin(method, path, body).await;
    (s, error_of(&body).0)
}

/// As the admin: refused with 400, error `code` and exactly `message`.
async fn admin_refused(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
    code: u64,
    message: &str,
) {
    let (s, body) = app.admin(method, path, body).await;
    assert_eq!(
        (s, error_of(&body).0),
        (StatusCode::BAD_REQUEST, code),
        "{body}"
    );
    assert_eq!(message_of(&body), message);
}

/// As the admin: deleting `path` is refused (400/21) with exactly `message`.
async fn cannot_delete(app: &TestApp, path: &str, message: &str) {
    admin_refused(app, Method::DELETE, path, None, 21, message).await;
}

#[tokio::test]
async fn tenants_and_groups_have_the_documented_shapes() {
    let app = TestApp::start().await;
    assert_eq!(
        app.get(TENANTS).await,
        (StatusCode::OK, json!({"tenants": []}))
    );

    let tenant = json!({"tenantId": "ApioSpTest"});
    assert_eq!(
        app.admin(Method::POST, TENANTS, Some(tenant.clone())).await,
        (
            StatusCode::OK,
            json!({"tenants": [{"tenantId": "ApioSpTest"}]})
        )
    );
    assert_eq!(
        admin_code(&app, Method::POST, TENANTS, Some(tenant)).await,
        (StatusCode::BAD_REQUEST, 11)
    );

    // Without the trailing slash too.
    assert_eq!(
        app.get("/api/v1/tenants/ApioSpTest").await,
        (StatusCode::OK, json!({"tenantId": "ApioSpTest"}))
    );
    assert_eq!(app.get(&tenant_path("Nope")).await.0, StatusCode::NOT_FOUND);

    let groups = groups_path("ApioSpTest");
    let group = json!({"groupId": "ApioGrpTest"});
    assert_eq!(
        app.admin(Method::POST, &groups, Some(group.clone())).await,
        (
            StatusCode::OK,
            json!({"groups": [{"groupId": "ApioGrpTest", "tenantId": "ApioSpTest"}]})
        )
    );
    assert_eq!(
        admin_code(&app, Method::POST, &groups, Some(group)).await,
        (StatusCode::BAD_REQUEST, 11)
    );
    assert_eq!(
        app.get(&group_path("ApioSpTest", "ApioGrpTest")).await,
        (
            StatusCode::OK,
            json!({"groupId": "ApioGrpTest", "tenantId": "ApioSpTest"})
        )
    );
    assert_eq!(
        app.get("/api/v1/tenants/ApioSpTest/groups/ApioGrpTest/services/call_recording")
            .await,
        (StatusCode::OK, json!({"name": null}))
    );

    // Missing objects: reading is 404, changing is 400/18.
    for missing in [
        group_path("ApioSpTest", "Nope"),
        assignment_path("ApioSpTest", "Nope"),
        groups_path("Nope"),
    ] {
        assert_eq!(
            app.get(&missing).await.0,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
    admin_refused(
        &app,
        Method::POST,
        &groups_path("Nope"),
        Some(json!({"groupId": "G"})),
        18,
        "Tenant 'Nope' does not exist.",
    )
    .await;
    for (method, path, body) in [
        (Method::DELETE, group_path("ApioSpTest", "Nope"), None),
        (Method::DELETE, tenant_path("Nope"), None),
        (
            Method::PUT,
            assignment_path("ApioSpTest", "Nope"),
            Some(json!({"name": null})),
        ),
    ] {
        assert_eq!(
            admin_code(&app, method, &path, body).await,
            (StatusCode::BAD_REQUEST, 18),
            "{path}"
        );
    }

    assert_eq!(
        app.admin(
            Method::DELETE,
            &group_path("ApioSpTest", "ApioGrpTest"),
            None
        )
        .await,
        (StatusCode::OK, json!({}))
    );
    assert_eq!(
        app.admin(Method::DELETE, "/api/v1/tenants/ApioSpTest", None)
            .await,
        (StatusCode::OK, json!({}))
    );
    assert_eq!(app.get(TENANTS).await.1, json!({"tenants": []}));
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_and_ids_are_refused_naming_the_field_and_change_nothing() {
    let app = TestApp::start().await;
    add_tenant_with_groups(&app, "T", &["G"]).await;
    add_platform(&app, "A").await;

    let cases = [
        (TENANTS.to_owned(), Method::POST, json!({}), "tenantId"),
        (
            TENANTS.to_owned(),
            Method::POST,
            json!({"tenantId": 7}),
            "tenantId",
        ),
        (
            TENANTS.to_owned(),
            Method::POST,
            json!({"tenantId": "x".repeat(31)}),
            "tenantId",
        ),
        (
            TENANTS.to_owned(),
            Method::POST,
            json!({"tenantId": " x"}),
            "tenantId",
        ),
        (
            TENANTS.to_owned(),
            Method::POST,
            json!({"tenantId": "x", "colour": 1}),
            "colour",
        ),
        (groups_path("T"), Method::POST, json!({}), "groupId"),
        (
            groups_path("T"),
            Method::POST,
            json!({"groupId": ""}),
            "groupId",
        ),
        (
            groups_path("T"),
            Method::POST,
            json!({"groupId": "y", "tenantId": "T"}),
            "tenantId",
        ),
        (assignment_path("T", "G"), Method::PUT, json!({}), "name"),
        (
            assignment_path("T", "G"),
            Method::PUT,
            json!({"name": 5}),
            "name",
        ),
        (
            assignment_path("T", "G"),
            Method::PUT,
            json!({"name": "A", "x": 1}),
            "x",
        ),
    ];
    for (path, method, body, field) in cases {
        let (s, answer) = app.admin(method.clone(), &path, Some(body.clone())).await;
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {answer}"
        );
        let (code, name, got) = error_of(&answer);
        assert_eq!((code, name.as_str()), (100, "INVALID_VALUE"), "{answer}");
        assert_eq!(got.as_deref(), Some(field), "{body}: {answer}");
    }
    let (s, body) = app
        .call(
            Method::PUT,
            &assignment_path("T", "G"),
            Some(&app.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    let (_, body) = app.get(TENANTS).await;
    assert_eq!(body, json!({"tenants": [{"tenantId": "T"}]}));
    let (_, body) = app.get(&groups_path("T")).await;
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(1));
    let (_, body) = app.get(&assignment_path("T", "G")).await;
    assert_eq!(body, json!({"name": null}));
    assert!(usage(&app, "A").await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn usage_follows_assign_reassign_clear_and_group_deletion() {
    let app = TestApp::start().await;
    let mut events = app
        .service
        .watch(&callrec_gateway::model::Principal::console(), None)
        .expect("a System Admin may watch");
    add_platform(&app, "A").await;
    add_platform(&app, "B").await;
    add_tenant(&app, "T1").await;
    add_tenant(&app, "T2").await;
    add_group(&app, "T1", "G1").await;
    add_group(&app, "T1", "G2").await;
    add_group(&app, "T2", "G1").await;
    let admin = app.token.clone();

    let (s, body) = assign(&app, &admin, "T1", "G1", Some("A")).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"name": "A"})));
    assign(&app, &admin, "T1", "G2", Some("A")).await;
    assign(&app, &admin, "T2", "G1", Some("A")).await;
    assert_eq!(
        usage(&app, "A").await,
        set(&[("T1", "G1"), ("T1", "G2"), ("T2", "G1")])
    );
    assert!(usage(&app, "B").await.is_empty());

    // Assigning the same platform again changes nothing.
    let (s, _) = assign(&app, &admin, "T1", "G1", Some("A")).await;
    assert_eq!(s, StatusCode::OK);

    let (s, body) = assign(&app, &admin, "T1", "G2", Some("B")).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"name": "B"})));
    let (_, body) = app.get(&assignment_path("T1", "G2")).await;
    assert_eq!(body, json!({"name": "B"}));
    assert_eq!(usage(&app, "A").await, set(&[("T1", "G1"), ("T2", "G1")]));
    assert_eq!(usage(&app, "B").await, set(&[("T1", "G2")]));

    let (s, body) = assign(&app, &admin, "T1", "G1", None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({"name": null})));
    assert_eq!(usage(&app, "A").await, set(&[("T2", "G1")]));

    // A platform that does not exist: refused, nothing changes.
    let (s, body) = assign(&app, &admin, "T2", "G1", Some("Nope")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).0, 18);
    assert_eq!(message_of(&body), "Call Recording platform does not exist.");
    assert_eq!(usage(&app, "A").await, set(&[("T2", "G1")]));

    let (s, _) = app
        .admin(Method::DELETE, &group_path("T1", "G2"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(usage(&app, "B").await.is_empty());
    // A group created again under the same id starts without a platform.
    add_group(&app, "T1", "G2").await;
    let (_, body) = app.get(&assignment_path("T1", "G2")).await;
    assert_eq!(body, json!({"name": null}));
    assert!(usage(&app, "B").await.is_empty());

    // Every change of an assignment was published, in order, and nothing else about groups.
    let mut assigned = Vec::new();
    // Published once durable, by the log follower: whatever is still to come arrives soon.
    while let Ok(Some(Ok(logged))) =
        tokio::time::timeout(std::time::Duration::from_millis(500), events.next()).await
    {
        if let Event::GroupAssigned {
            group,
            previous,
            platform,
        } = logged.event
        {
            assigned.push((
                format!("{}/{}", group.tenant_id, group.group_id),
                previous,
                platform,
            ));
        }
    }
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        assigned,
        vec![
            ("T1/G1".into(), None, s("A")),
            ("T1/G2".into(), None, s("A")),
            ("T2/G1".into(), None, s("A")),
            ("T1/G2".into(), s("A"), s("B")),
            ("T1/G1".into(), s("A"), None),
            ("T1/G2".into(), s("B"), None),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_platform_in_use_is_not_deleted_until_its_groups_are_cleared() {
    let app = TestApp::start().await;
    add_platform(&app, "Default").await;
    add_platform(&app, "B").await;
    add_tenant_with_groups(&app, "T", &["G1", "G2"]).await;
    let admin = app.token.clone();
    assign(&app, &admin, "T", "G1", Some("B")).await;
    assign(&app, &admin, "T", "G2", Some("B")).await;

    let (s, body) = app.admin(Method::DELETE, &platform_path("B"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&body).0, 21);
    assert!(message_of(&body).contains("2 groups use it"), "{body}");

    assign(&app, &admin, "T", "G1", None).await;
    let (s, body) = app.admin(Method::DELETE, &platform_path("B"), None).await;
    assert_eq!(error_of(&body).0, 21);
    assert!(message_of(&body).contains("1 group uses it"), "{body}");

    // Deleting the group drops its assignment, and with it the last use.
    app.admin(Method::DELETE, &group_path("T", "G2"), None)
        .await;
    let (s2, body) = app.admin(Method::DELETE, &platform_path("B"), None).await;
    assert_eq!((s, s2), (StatusCode::BAD_REQUEST, StatusCode::OK), "{body}");
    let (s, _) = app.get(&platform_path("B")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn tenants_and_groups_with_groups_or_users_are_not_deleted() {
    let app = TestApp::start().await;
    add_tenant_with_groups(&app, "T", &["G1", "G2"]).await;

    cannot_delete(
        &app,
        &tenant_path("T"),
        "Tenant 'T' cannot be deleted: it has 2 groups.",
    )
    .await;

    // Users must name a tenant and group that exist.
    for (t, g, field) in [("Nope", None, "tenantId"), ("T", Some("Nope"), "groupId")] {
        let level = if g.is_some() { 8 } else { 12 };
        let (s, body) = app
            .admin(
                Method::POST,
                "/api/v1/local/users/",
                Some(json!({"username": "u", "password": "password-1234",
                            "userLevel": level, "tenantId": t, "groupId": g})),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            error_of(&body),
            (100, "INVALID_VALUE".into(), Some(field.into()))
        );
    }

    user(&app, "ga", 8, Some("T"), Some("G1")).await;
    user(&app, "ta", 12, Some("T"), None).await;
    cannot_delete(
        &app,
        &group_path("T", "G1"),
        "Group 'G1' cannot be deleted: it has 1 user.",
    )
    .await;

    app.admin(Method::DELETE, "/api/v1/local/users/ga/", None)
        .await;
    for g in ["G1", "G2"] {
        let (s, body) = app.admin(Method::DELETE, &group_path("T", g), None).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    cannot_delete(
        &app,
        &tenant_path("T"),
        "Tenant 'T' cannot be deleted: it has 1 user.",
    )
    .await;
    app.admin(Method::DELETE, "/api/v1/local/users/ta/", None)
        .await;
    let (s, body) = app.admin(Method::DELETE, &tenant_path("T"), None).await;
    assert_eq!((s, body), (StatusCode::OK, json!({})));
    app.stop().await;
}

#[tokio::test]
async fn each_level_acts_only_within_its_tenant_or_group() {
    let app = TestApp::start().await;
    add_platform(&app, "A").await;
    for t in ["T1", "T2"] {
        add_tenant(&app, t).await;
        for g in ["G1", "G2"] {
            add_group(&app, t, g).await;
        }
    }
    let ga = user(&app, "ga", 8, Some("T1"), Some("G1")).await;
    let ta = user(&app, "ta", 12, Some("T1"), None).await;
    let eu = user(&app, "eu", 0, Some("T1"), Some("G1")).await;

    let ok = StatusCode::OK;
    let no = StatusCode::FORBIDDEN;
    let assign_a = Some(json!({"name": "A"}));
    let new_group = Some(json!({"groupId": "G3"}));
    let new_tenant = Some(json!({"tenantId": "T3"}));
    #[rustfmt::skip]
    let cases: Vec<(&str, Method, String, Option<Value>, StatusCode)> = vec![
        // A Group Admin: its own group only, and never the tenant's list.
        ("ga", Method::GET, group_path("T1", "G1"), None, ok),
        ("ga", Method::GET, assignment_path("T1", "G1"), None, ok),
        ("ga", Method::PUT, assignment_path("T1", "G1"), assign_a.clone(), ok),
        ("ga", Method::GET, assignment_path("T1", "G2"), None, no),
        ("ga", Method::PUT, assignment_path("T1", "G2"), assign_a.clone(), no),
        ("ga", Method::PUT, assignment_path("T2", "G1"), assign_a.clone(), no),
        ("ga", Method::GET, group_path("T1", "G2"), None, no),
        ("ga", Method::GET, groups_path("T1"), None, no),
        ("ga", Method::POST, groups_path("T1"), new_group.clone(), no),
        ("ga", Method::DELETE, group_path("T1", "G1"), None, no),
        ("ga", Method::GET, tenant_path("T1"), None, no),
        ("ga", Method::GET, TENANTS.into(), None, no),
        ("ga", Method::GET, usage_path("A"), None, no),
        // A Tenant Admin: every group of its tenant, nothing of another tenant.
        ("ta", Method::GET, tenant_path("T1"), None, ok),
        ("ta", Method::GET, groups_path("T1"), None, ok),
        ("ta", Method::PUT, assignment_path("T1", "G2"), assign_a.clone(), ok),
        ("ta", Method::GET, assignment_path("T1", "G1"), None, ok),
        ("ta", Method::POST, groups_path("T1"), new_group.clone(), ok),
        ("ta", Method::DELETE, group_path("T1", "G3"), None, ok),
        ("ta", Method::GET, tenant_path("T2"), None, no),
        ("ta", Method::GET, groups_path("T2"), None, no),
        ("ta", Method::GET, group_path("T2", "G1"), None, no),
        ("ta", Method::POST, groups_path("T2"), new_group.clone(), no),
        ("ta", Method::DELETE, group_path("T2", "G1"), None, no),
        ("ta", Method::GET, assignment_path("T2", "G1"), None, no),
        ("ta", Method::PUT, assignment_path("T2", "G1"), assign_a.clone(), no),
        ("ta", Method::GET, TENANTS.into(), None, no),
        ("ta", Method::POST, TENANTS.into(), new_tenant.clone(), no),
        ("ta", Method::DELETE, tenant_path("T1"), None, no),
        // An End User: nothing, not even its own group.
        ("eu", Method::GET, group_path("T1", "G1"), None, no),
        ("eu", Method::GET, assignment_path("T1", "G1"), None, no),
        ("eu", Method::PUT, assignment_path("T1", "G1"), assign_a.clone(), no),
        ("eu", Method::GET, groups_path("T1"), None, no),
    ];
    for (who, method, path, body, expected) in cases {
        let token = match who {
            "ga" => &ga,
            "ta" => &ta,
            _ => &eu,
        };
        let (s, answer) = app
            .call(method.clone(), &path, Some(token), body.clone())
            .await;
        assert_eq!(s, expected, "{who} {method} {path}: {answer}");
        if expected == no {
            assert_eq!(error_of(&answer).1, "FORBIDDEN", "{answer}");
        }
    }
    // Refused calls changed nothing.
    assert_eq!(usage(&app, "A").await, set(&[("T1", "G1"), ("T1", "G2")]));
    let (_, body) = app.get(&groups_path("T2")).await;
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(2));

    for (method, path) in [
        (Method::GET, TENANTS.to_owned()),
        (Method::POST, TENANTS.to_owned()),
        (Method::GET, tenant_path("T1")),
        (Method::DELETE, tenant_path("T1")),
        (Method::GET, groups_path("T1")),
        (Method::GET, group_path("T1", "G1")),
        (Method::DELETE, group_path("T1", "G1")),
        (Method::GET, assignment_path("T1", "G1")),
        (Method::PUT, assignment_path("T1", "G1")),
    ] {
        let (s, answer) = app
            .call(method.clone(), &path, None, Some(json!({"name": null})))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}: {answer}");
        let (s, _) = app
            .call(method.clone(), &path, Some("not-a-token"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    app.stop().await;
}

/// Twenty assignments race one delete of the same platform, a few rounds over: whatever the
/// order, no group is left assigned to a deleted platform and usage matches the groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_assignments_and_platform_delete_stay_consistent() {
    const GROUPS: usize = 20;
    const ROUNDS: usize = 5;
    let app = TestApp::start().await;
    // The default cannot be deleted while others exist; the raced platform must not be it.
    add_platform(&app, "Default").await;
    add_tenant(&app, "T").await;
    for i in 0..GROUPS {
        add_group(&app, "T", &format!("G{i}")).await;
    }
    let admin = app.token.clone();
    for round in 0..ROUNDS {
        let name = format!("P{round}");
        add_platform(&app, &name).await;
        let assignments = (0..GROUPS).map(|i| {
            let (app, admin, name) = (&app, &admin, &name);
            async move {
                let g = format!("G{i}");
                let (s, body) = assign(app, admin, "T", &g, Some(name)).await;
                match s {
                    StatusCode::OK => assert_eq!(body, json!({"name": name})),
                    _ => assert_eq!(error_of(&body).0, 18, "{body}"),
                }
                (g, s == StatusCode::OK)
            }
        });
        // The delete goes first in the even rounds, last in the odd ones.
        let delete = async {
            let (s, body) = app.admin(Method::DELETE, &platform_path(&name), None).await;
            if s != StatusCode::OK {
                assert_eq!(error_of(&body).0, 21, "{body}");
            }
            s == StatusCode::OK
        };
        let (deleted, assigned) = if round % 2 == 0 {
            futures_util::join!(delete, futures_util::future::join_all(assignments))
        } else {
            let (a, d) = futures_util::join!(futures_util::future::join_all(assignments), delete);
            (d, a)
        };

        // Where every group points now, and what every platform so far says about it.
        let mut current = Vec::new();
        for i in 0..GROUPS {
            let g = format!("G{i}");
            let (s, body) = app.get(&assignment_path("T", &g)).await;
            assert_eq!(s, StatusCode::OK);
            current.push((("T".to_owned(), g), body["name"].clone()));
        }
        for p in 0..=round {
            let p = format!("P{p}");
            let referencing: BTreeSet<_> = current
                .iter()
                .filter(|(_, name)| *name == json!(p))
                .map(|(g, _)| g.clone())
                .collect();
            let (exists, _) = app.get(&platform_path(&p)).await;
            if exists == StatusCode::OK {
                assert_eq!(usage(&app, &p).await, referencing, "round {round}, {p}");
            } else {
                assert_eq!(exists, StatusCode::NOT_FOUND);
                assert!(
                    referencing.is_empty(),
                    "round {round}: {p} is gone but used"
                );
            }
        }
        let accepted: BTreeSet<_> = assigned
            .iter()
            .filter(|(_, ok)| *ok)
            .map(|(g, _)| ("T".to_owned(), g.clone()))
            .collect();
        if deleted {
            // The delete saw no use, so it came before every assignment, which all failed.
            assert!(accepted.is_empty(), "round {round}: {accepted:?}");
        } else {
            // Refused for being in use: some assignment came first, and all accepted stand.
            assert!(!accepted.is_empty(), "round {round}");
            assert_eq!(usage(&app, &name).await, accepted, "round {round}");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn assignments_and_usage_survive_a_restart() {
    let app = TestApp::start().await;
    add_platform(&app, "Call Rec Platform 1").await;
    add_tenant_with_groups(&app, "Apio Sp", &["Grp 1", "Grp 2"]).await;
    let admin = app.token.clone();
    assign(
        &app,
        &admin,
        "Apio Sp",
        "Grp 1",
        Some("Call Rec Platform 1"),
    )
    .await;
    assign(
        &app,
        &admin,
        "Apio Sp",
        "Grp 2",
        Some("Call Rec Platform 1"),
    )
    .await;
    assign(&app, &admin, "Apio Sp", "Grp 2", None).await;

    let app = TestApp::start_on(app.stop().await, &[]).await;
    let (_, body) = app.get(&assignment_path("Apio Sp", "Grp 1")).await;
    assert_eq!(body, json!({"name": "Call Rec Platform 1"}));
    let (_, body) = app.get(&usage_path("Call Rec Platform 1")).await;
    assert_eq!(
        body,
        json!({"groups": [{"groupId": "Grp 1", "tenantId": "Apio Sp"}]})
    );
    let (_, body) = app.get(&groups_path("Apio Sp")).await;
    assert_eq!(body["groups"].as_array().map(Vec::len), Some(2));
    app.stop().await;
}
