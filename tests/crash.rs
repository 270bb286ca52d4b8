//! Crash safety: the real binary takes concurrent mutations of every kind from several clients
//! and is `kill -9`ed at a random moment, round after round. After each restart every
//! acknowledged change must be there, a change in flight at the kill may have happened or not,
//! and the model's invariants must hold.
//!
//! The run is seeded: the seed is printed, and `CALLREC_CRASH_SEED=<n>` replays it
//! (`CALLREC_CRASH_ROUNDS=<n>` changes the number of rounds). `CALLREC_CRASH_SKIP_FLUSH=1`
//! runs the server with `--unsafe-skip-flush` (acknowledge before the disk has the write): the
//! test must then fail, which shows it can see a lost write.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::process::Process;
use common::{check_assignments, encode, platform_path, platforms_path};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};

const PASSWORD: &str = "crash-test-password";
const CLIENTS: usize = 5;
const PROPERTIES: &str = "/api/v1/system/services/call_recording/properties/";
/// The integer property each client owns (a client writes only its own field).
const PROPERTY_FIELDS: [(&str, i64, i64); 3] = [
    ("refreshPeriodSeconds", 10, 300),
    ("maxConsecutiveFailures", 1, 10),
    ("maxResponseWaitTimeMilliseconds", 50, 10_000),
];
const BOOL_FIELDS: [&str; 2] = [
    "continueCallAfterRecordingFailure",
    "continueCallAfterVideoRecordingFailure",
];

/// What a key may hold after a restart: one value once acknowledged (or refused), two while
/// the outcome of a request cut off by the kill is unknown. `Value::Null` is "absent".
#[derive(Debug, Clone)]
struct Expect(Vec<Value>);

impl Expect {
    fn known(v: Value) -> Expect {
        Expect(vec![v])
    }
}

/// The tracked state: every key a client has ever touched.
#[derive(Default)]
struct Tracked {
    /// `platform:<name>` → the platform's fields (no `default`), `tenant:<id>` → true,
    /// `group:<t>/<g>` → `{"name": ...}`, `property:<field>` → the value.
    keys: BTreeMap<String, Expect>,
}

impl Tracked {
    fn current(&self, key: &str) -> Value {
        match self.keys.get(key) {
            Some(Expect(values)) if values.len() == 1 => values[0].clone(),
            _ => Value::Null,
        }
    }
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    /// The admin's view of a running server.
    async fn of(p: &Process, client: &reqwest::Client) -> Api {
        Api {
            client: client.clone(),
            base: p.url(""),
            token: p.login("admin", PASSWORD).await,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        self.call_as(method, path, body, None).await
    }

    /// As [`Api::call`], sent with `x-request-id: request_id`.
    async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        request_id: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Some(id) = request_id {
            request = request.header("x-request-id", id);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self
            .call(Method::GET, path, None)
            .await
            .expect("GET answered");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

/// The platform's fields as GET of one platform answers them, without `default`.
fn fields(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("default");
        o.remove("name");
    }
    v
}

fn random_platform(rng: &mut StdRng, name: &str) -> Value {
    let transport = ["UDP", "TCP", "Unspecified"][rng.gen_range(0..3)];
    let schema = ["1.0", "2.0", "3.0"][rng.gen_range(0..3)];
    let mut p = json!({
        "name": name,
        "netAddress": format!("10.{}.{}.{}", rng.gen_range(0..255), rng.gen_range(0..255), rng.gen_range(1..255)),
        "mediaStream": if rng.gen_bool(0.5) { "Dual" } else { "Single" },
        "transportProtocol": transport,
        "schemaVersion": schema,
        "supportVideoRecording": rng.gen_bool(0.5),
    });
    if rng.gen_bool(0.7) {
        p["port"] = json!(rng.gen_range(1..=65535));
    }
    if rng.gen_bool(0.7) {
        p["description"] = json!(format!("desc {}", rng.gen_range(0..1000)));
    }
    p
}

/// One mutation a client chose: the request, and the keys it may change with their value if
/// it succeeds.
struct Op {
    method: Method,
    path: String,
    body: Option<Value>,
    /// (key, value after success)
    effects: Vec<(String, Value)>,
}

/// The keys a client owns and their current known values, to choose sensible operations.
struct Client {
    id: usize,
    rng: StdRng,
    next: usize,
    /// Requests sent, for their request ids.
    sent: usize,
    /// The request ids of this client's acknowledged changes, in the order they were made.
    acknowledged: Vec<String>,
}

impl Client {
    fn own<'a>(&self, tracked: &'a Tracked, kind: &str) -> Vec<&'a String> {
        let prefix = format!("{kind}:c{}-", self.id);
        tracked
            .keys
            .iter()
            .filter(|(k, e)| k.starts_with(&prefix) && e.0.len() == 1 && !e.0[0].is_null())
            .map(|(k, _)| k)
            .collect()
    }

    fn fresh(&mut self, kind: &str) -> String {
        self.next += 1;
        format!("c{}-{kind}{}", self.id, self.next)
    }

    fn choose(&mut self, tracked: &Tracked) -> Op {
        let platforms: Vec<String> = self
            .own(tracked, "platform")
            .into_iter()
            .map(|k| k["platform:".len()..].to_owned())
            .collect();
        let tenants: Vec<String> = self
            .own(tracked, "tenant")
            .into_iter()
            .map(|k| k["tenant:".len()..].to_owned())
            .collect();
        let groups: Vec<String> = self
            .own(tracked, "group")
            .into_iter()
            .map(|k| k["group:".len()..].to_owned())
            .collect();
        loop {
            match self.rng.gen_range(0..12) {
                0 | 1 if platforms.len() < 6 => {
                    let name = self.fresh("P");
                    let body = random_platform(&mut self.rng, &name);
                    return Op {
                        method: Method::POST,
                        path: platforms_path(),
                        effects: vec![(format!("platform:{name}"), fields(body.clone()))],
                        body: Some(body),
                    };
                }
                2 | 3 if !platforms.is_empty() => {
                    let name = &platforms[self.rng.gen_range(0..platforms.len())];
                    let key = format!("platform:{name}");
                    let mut after = tracked.current(&key);
                    let mut body = json!({});
                    if self.rng.gen_bool(0.5) {
                        let port = if self.rng.gen_bool(0.3) {
                            0
                        } else {
                            self.rng.gen_range(1..=65535)
                        };
                        body["port"] = json!(port);
                        if port == 0 {
                            after.as_object_mut().map(|o| o.remove("port"));
                        } else {
                            after["port"] = json!(port);
                        }
                    }
                    if self.rng.gen_bool(0.4) {
                        let d = if self.rng.gen_bool(0.3) {
                            String::new()
                        } else {
                            format!("d{}", self.rng.gen_range(0..99))
                        };
                        body["description"] = json!(d);
                        if d.is_empty() {
                            after.as_object_mut().map(|o| o.remove("description"));
                        } else {
                            after["description"] = json!(d);
                        }
                    }
                    if self.rng.gen_bool(0.3) {
                        let v = self.rng.gen_bool(0.5);
                        body["supportVideoRecording"] = json!(v);
                        after["supportVideoRecording"] = json!(v);
                    }
                    if self.rng.gen_bool(0.4) {
                        body["default"] = json!(true);
                    }
                    return Op {
                        method: Method::PUT,
                        path: platform_path(name),
                        body: Some(body),
                        effects: vec![(key, after)],
                    };
                }
                4 if !platforms.is_empty() => {
                    let name = &platforms[self.rng.gen_range(0..platforms.len())];
                    return Op {
                        method: Method::DELETE,
                        path: platform_path(name),
                        body: None,
                        effects: vec![(format!("platform:{name}"), Value::Null)],
                    };
                }
                5 => {
                    let mut body = json!({});
                    let mut effects = Vec::new();
                    if let Some((field, min, max)) = PROPERTY_FIELDS.get(self.id) {
                        let v = self.rng.gen_range(*min..=*max);
                        body[*field] = json!(v);
                        effects.push((format!("property:{field}"), json!(v)));
                    } else if let Some(field) = BOOL_FIELDS.get(self.id - PROPERTY_FIELDS.len()) {
                        let v = self.rng.gen_bool(0.5);
                        body[*field] = json!(v);
                        effects.push((format!("property:{field}"), json!(v)));
                    }
                    return Op {
                        method: Method::PUT,
                        path: PROPERTIES.into(),
                        body: Some(body),
                        effects,
                    };
                }
                6 if tenants.len() < 3 => {
                    let id = self.fresh("T");
                    return Op {
                        method: Method::POST,
                        path: "/api/v1/tenants/".into(),
                        body: Some(json!({"tenantId": id})),
                        effects: vec![(format!("tenant:{id}"), json!(true))],
                    };
                }
                7 if !tenants.is_empty() => {
                    let id = &tenants[self.rng.gen_range(0..tenants.len())];
                    return Op {
                        method: Method::DELETE,
                        path: format!("/api/v1/tenants/{}/", encode(id)),
                        body: None,
                        effects: vec![(format!("tenant:{id}"), Value::Null)],
                    };
                }
                8 if !tenants.is_empty() && groups.len() < 8 => {
                    let t = &tenants[self.rng.gen_range(0..tenants.len())];
                    let g = self.fresh("G");
                    return Op {
                        method: Method::POST,
                        path: format!("/api/v1/tenants/{}/groups/", encode(t)),
                        body: Some(json!({"groupId": g})),
                        effects: vec![(format!("group:{t}/{g}"), json!({"name": null}))],
                    };
                }
                9 if !groups.is_empty() => {
                    let tg = &groups[self.rng.gen_range(0..groups.len())];
                    let (t, g) = tg.split_once('/').expect("t/g");
                    return Op {
                        method: Method::DELETE,
                        path: format!("/api/v1/tenants/{}/groups/{}/", encode(t), encode(g)),
                        body: None,
                        effects: vec![(format!("group:{tg}"), Value::Null)],
                    };
                }
                10 | 11 if !groups.is_empty() => {
                    let tg = &groups[self.rng.gen_range(0..groups.len())];
                    let (t, g) = tg.split_once('/').expect("t/g");
                    let name = if platforms.is_empty() || self.rng.gen_bool(0.25) {
                        Value::Null
                    } else {
                        json!(platforms[self.rng.gen_range(0..platforms.len())])
                    };
                    return Op {
                        method: Method::PUT,
                        path: format!(
                            "/api/v1/tenants/{}/groups/{}/services/call_recording/",
                            encode(t),
                            encode(g)
                        ),
                        body: Some(json!({"name": name})),
                        effects: vec![(format!("group:{tg}"), json!({"name": name}))],
                    };
                }
                _ => {}
            }
        }
    }
}

#[derive(Default, Debug)]
struct Figures {
    requests: usize,
    acknowledged: usize,
    refused: usize,
    in_flight_at_kill: usize,
}

/// One client's sequential loop until the server dies; updates the shared tracked state.
async fn client_loop(
    api: &Api,
    client: &mut Client,
    tracked: &std::sync::Mutex<Tracked>,
    figures: &std::sync::Mutex<Figures>,
) {
    loop {
        let op = client.choose(&tracked.lock().unwrap());
        figures.lock().unwrap().requests += 1;
        client.sent += 1;
        let request_id = format!("c{}-r{}", client.id, client.sent);
        match api
            .call_as(
                op.method.clone(),
                &op.path,
                op.body.as_ref(),
                Some(&request_id),
            )
            .await
        {
            Ok((200, _)) => {
                figures.lock().unwrap().acknowledged += 1;
                let mut t = tracked.lock().unwrap();
                // A change that sets what is already there commits nothing, so it has no
                // entry; one whose starting point the kill left unknown may or may not.
                let changes = op.effects.iter().any(|(key, value)| match t.keys.get(key) {
                    Some(Expect(known)) if known.len() == 1 => known[0] != *value,
                    Some(_) => false,
                    None => !value.is_null(),
                });
                if changes {
                    client.acknowledged.push(request_id);
                }
                for (key, value) in op.effects {
                    t.keys.insert(key, Expect::known(value));
                }
            }
            Ok((status, body)) => {
                assert!(
                    status == 400 && body["errors"][0]["code"].is_u64(),
                    "{} {} {:?}: unexpected {status} {body}",
                    op.method,
                    op.path,
                    op.body
                );
                figures.lock().unwrap().refused += 1;
            }
            Err(_) => {
                // Cut off by the kill: it may have happened or not.
                figures.lock().unwrap().in_flight_at_kill += 1;
                let mut t = tracked.lock().unwrap();
                for (key, value) in op.effects {
                    let before = t.current(&key);
                    t.keys.insert(key, Expect(vec![before, value]));
                }
                return;
            }
        }
    }
}

/// The change log after a restart: gap-free, and an entry for every acknowledged change, in
/// the order each client made them.
async fn verify_log(api: &Api, clients: &[Client], round: usize, seed: u64) {
    let ctx = format!("round {round}, seed {seed} (CALLREC_CRASH_SEED={seed} to replay)");
    let mut sequences = Vec::new();
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(c) => format!("/api/v1/audit/?limit=500&after={c}"),
            None => "/api/v1/audit/?limit=500".to_owned(),
        };
        let page = api.get(&path).await;
        for entry in page["entries"].as_array().expect("entries") {
            sequences.push(entry["sequence"].as_u64().expect("sequence"));
            if let Some(id) = entry["requestId"].as_str() {
                ids.push(id.to_owned());
            }
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let first = sequences.first().copied().unwrap_or(1);
    assert_eq!(
        sequences,
        (first..first + sequences.len() as u64).collect::<Vec<_>>(),
        "{ctx}: the log has gaps"
    );
    for client in clients {
        let prefix = format!("c{}-", client.id);
        let logged: Vec<&String> = ids.iter().filter(|id| id.starts_with(&prefix)).collect();
        // Every acknowledged change is logged, in order; a change cut off by a kill may be
        // logged too, between them.
        let mut at = 0;
        for id in &client.acknowledged {
            match logged[at..].iter().position(|l| *l == id) {
                Some(found) => at += found + 1,
                None => panic!("{ctx}: acknowledged change {id} is not in the log, in order"),
            }
        }
    }
}

/// Reads everything back over REST, checks the tracked keys and the invariants, and pins
/// every key to what is there now.
async fn verify(api: &Api, tracked: &mut Tracked, round: usize, seed: u64) {
    let ctx = format!("round {round}, seed {seed} (CALLREC_CRASH_SEED={seed} to replay)");
    let mut actual: BTreeMap<String, Value> = BTreeMap::new();

    // Platforms and the default.
    let list = api.get(&platforms_path()).await;
    let entries = list["callRecordingPlatforms"]
        .as_array()
        .expect("list")
        .clone();
    let default = list["systemDefault"].clone();
    let mut defaults = 0;
    let mut names = BTreeSet::new();
    for entry in &entries {
        let name = entry["name"].as_str().expect("name").to_owned();
        let one = api.get(&platform_path(&name)).await;
        if one["default"] == json!(true) {
            defaults += 1;
            assert_eq!(default, json!(name), "{ctx}: default flag on a non-default");
        }
        assert_eq!(
            fields(entry.clone()),
            fields(one.clone()),
            "{ctx}: list and GET differ for {name}"
        );
        actual.insert(format!("platform:{name}"), fields(one));
        names.insert(name);
    }
    if entries.is_empty() {
        assert_eq!(default, Value::Null, "{ctx}: a default without platforms");
        assert_eq!(defaults, 0, "{ctx}");
    } else {
        assert_eq!(defaults, 1, "{ctx}: exactly one default expected in {list}");
        assert!(
            names.contains(default.as_str().unwrap_or("")),
            "{ctx}: default {default} missing"
        );
    }

    // Properties.
    let props = api.get(PROPERTIES).await;
    for (field, ..) in PROPERTY_FIELDS {
        actual.insert(format!("property:{field}"), props[field].clone());
    }
    for field in BOOL_FIELDS {
        actual.insert(format!("property:{field}"), props[field].clone());
    }

    // Tenants, groups, assignments, usage.
    let tenancy = check_assignments(async |path: &str| api.get(path).await, &names, &ctx).await;
    for (t, groups) in tenancy {
        actual.insert(format!("tenant:{t}"), json!(true));
        for (g, a) in groups {
            actual.insert(format!("group:{t}/{g}"), a);
        }
    }

    // Every tracked key holds an allowed value; nothing exists that no client made.
    for (key, expect) in &tracked.keys {
        let got = actual.get(key).cloned().unwrap_or(Value::Null);
        assert!(
            expect.0.contains(&got),
            "{ctx}: {key} is {got}, expected one of {:?}",
            expect.0
        );
    }
    for (key, value) in &actual {
        if !key.starts_with("property:") {
            assert!(
                tracked.keys.contains_key(key),
                "{ctx}: {key} = {value} was never written"
            );
        }
    }
    // Pin each key to what survived.
    let keys: Vec<String> = tracked.keys.keys().cloned().collect();
    for key in keys {
        let got = actual.get(&key).cloned().unwrap_or(Value::Null);
        tracked.keys.insert(key, Expect::known(got));
    }
    for (key, value) in actual {
        tracked.keys.entry(key).or_insert(Expect::known(value));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_no_acknowledged_change() {
    let seed = common::seed_from_env("CALLREC_CRASH_SEED");
    let rounds: usize = common::from_env("CALLREC_CRASH_ROUNDS", 24);
    eprintln!("crash test: seed {seed}, {rounds} rounds (CALLREC_CRASH_SEED={seed} replays)");
    let mut rng = StdRng::seed_from_u64(seed);
    let data = tempfile::tempdir().expect("temp dir");
    let envs = [("CALLREC_ADMIN_PASSWORD", PASSWORD), ("RUST_LOG", "warn")];
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut clients: Vec<Client> = (0..CLIENTS)
        .map(|id| Client {
            id,
            rng: StdRng::seed_from_u64(seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            next: 0,
            sent: 0,
            acknowledged: Vec::new(),
        })
        .collect();
    let tracked = std::sync::Mutex::new(Tracked::default());
    let figures = std::sync::Mutex::new(Figures::default());
    let extra: &[&str] = if std::env::var_os("CALLREC_CRASH_SKIP_FLUSH").is_some() {
        &["--unsafe-skip-flush"]
    } else {
        &[]
    };
    let started = Instant::now();
    for round in 1..=rounds {
        let p = Process::serve_with_args(data.path(), &envs, extra).await;
        let api = Api::of(&p, &http).await;
        let mut state = std::mem::take(&mut *tracked.lock().unwrap());
        verify(&api, &mut state, round, seed).await;
        verify_log(&api, &clients, round, seed).await;
        *tracked.lock().unwrap() = state;
        let kill_after = Duration::from_millis(rng.gen_range(30..400));
        let work = futures_util::future::join_all(
            clients
                .iter_mut()
                .map(|c| client_loop(&api, c, &tracked, &figures)),
        );
        let killer = async {
            tokio::time::sleep(kill_after).await;
            p.kill().await
        };
        let (_, stderr) = tokio::time::timeout(Duration::from_secs(60), async {
            tokio::join!(work, killer)
        })
        .await
        .unwrap_or_else(|_| panic!("round {round} (seed {seed}) did not end"));
        assert!(
            !stderr.contains("panicked"),
            "round {round}, seed {seed}: {stderr}"
        );
    }
    // The last state, after a clean start.
    let p = Process::serve(data.path(), &envs).await;
    let api = Api::of(&p, &http).await;
    let mut state = std::mem::take(&mut *tracked.lock().unwrap());
    verify(&api, &mut state, rounds + 1, seed).await;
    verify_log(&api, &clients, rounds + 1, seed).await;
    let keys = state.keys.len();
    let (code, stderr) = p.terminate().await;
    assert_eq!(code, Some(0), "{stderr}");
    let f = figures.lock().unwrap();
    eprintln!(
        "crash test: {rounds} kill -9 rounds survived in {:.1} s; {} requests, {} acknowledged, {} refused, {} cut off by the kill; {} keys tracked",
        started.elapsed().as_secs_f64(),
        f.requests,
        f.acknowledged,
        f.refused,
        f.in_flight_at_kill,
        keys
    );
    assert!(
        f.acknowledged > rounds,
        "too few acknowledged writes to prove anything: {f:?}"
    );
}
