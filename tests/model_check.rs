//! Model checking: random sequences of operations, some of them invalid, applied both to the
//! real `Service` over a sled store and to a small in-memory reference model written from the
//! rules in README and the model's module documentation. Every answer (the value, or the error's sub code and field) and the
//! final state must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use callrec_gateway::error::Error;
use callrec_gateway::model::{
    Group, GroupRef, MediaStream, NewPlatform, Platform, PlatformChange, Principal, Properties,
    PropertiesChange, SchemaVersion, Tenant, TransportProtocol,
};
use callrec_gateway::service::{PlatformEntry, PlatformList, Service, SessionSettings};
use callrec_gateway::store::{SledStore, StoreOptions};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Inputs: small pools so that operations collide, each value with whether it is valid.

const NAMES: &[(&str, bool)] = &[
    ("A", true),
    ("B", true),
    ("Call Rec Platform 1", true),
    ("Ωmega é", true),
    ("", false),
    (" lead", false),
    ("trail ", false),
    ("a\u{7}b", false),
    ("LONG81", false),
];
const ADDRESSES: &[(&str, bool)] = &[
    ("10.0.32.55", true),
    ("::1", true),
    ("rec-1.example.com", true),
    ("10.0.0.256", false),
    ("rec_1", false),
    ("", false),
];
const PORTS: &[i64] = &[-1, 0, 1, 222, 65535, 65536, i64::MAX, i64::MIN];
const DESCRIPTIONS: &[(&str, bool)] = &[
    ("test description", true),
    (" spaced ", true),
    ("", false),
    ("d\u{0}", false),
    ("LONG81", false),
];
const TENANTS: &[(&str, bool)] = &[("T1", true), ("T2", true), ("", false), ("LONG31", false)];
const GROUPS: &[(&str, bool)] = &[("G1", true), ("G2", true), ("g\n", false)];

fn text(s: &str) -> String {
    match s {
        "LONG81" => "x".repeat(81),
        "LONG31" => "t".repeat(31),
        other => other.to_owned(),
    }
}

fn pick(pool: &'static [(&'static str, bool)]) -> impl Strategy<Value = usize> {
    0..pool.len()
}

#[derive(Debug, Clone)]
enum Op {
    Add {
        name: usize,
        address: usize,
        port: Option<i64>,
        description: Option<usize>,
        media: bool,
        transport: u8,
        schema: u8,
        video: bool,
    },
    Modify {
        name: usize,
        make_default: Option<bool>,
        address: Option<usize>,
        /// `Some(None)` removes the port.
        port: Option<Option<i64>>,
        description: Option<Option<usize>>,
        video: Option<bool>,
    },
    Delete {
        name: usize,
    },
    Properties {
        refresh: Option<i64>,
        failures: Option<i64>,
        wait: Option<i64>,
        continue_call: Option<bool>,
    },
    AddTenant(usize),
    DeleteTenant(usize),
    AddGroup(usize, usize),
    DeleteGroup(usize, usize),
    Assign(usize, usize, Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    let port = prop::sample::select(PORTS);
    prop_oneof![
        3 => (pick(NAMES), pick(ADDRESSES), prop::option::of(port.clone()),
              prop::option::of(pick(DESCRIPTIONS)), any::<bool>(), 0u8..3, 0u8..3, any::<bool>())
            .prop_map(|(name, address, port, description, media, transport, schema, video)| Op::Add {
                name, address, port, description, media, transport, schema, video
            }),
        3 => (pick(NAMES), prop::option::of(any::<bool>()), prop::option::weighted(0.3, pick(ADDRESSES)),
              prop::option::weighted(0.4, prop::option::of(port)),
              prop::option::weighted(0.3, prop::option::of(pick(DESCRIPTIONS))),
              prop::option::weighted(0.3, any::<bool>()))
            .prop_map(|(name, make_default, address, port, description, video)| Op::Modify {
                name, make_default, address, port, description, video
            }),
        2 => pick(NAMES).prop_map(|name| Op::Delete { name }),
        1 => (prop::option::of(prop_oneof![Just(9i64), Just(10), Just(300), Just(301), Just(-5), Just(60)]),
              prop::option::of(prop_oneof![Just(0i64), Just(1), Just(10), Just(11), Just(5)]),
              prop::option::of(prop_oneof![Just(49i64), Just(50), Just(10_000), Just(10_001), Just(i64::MAX), Just(3000)]),
              prop::option::of(any::<bool>()))
            .prop_map(|(refresh, failures, wait, continue_call)| Op::Properties {
                refresh, failures, wait, continue_call
            }),
        1 => pick(TENANTS).prop_map(Op::AddTenant),
        1 => pick(TENANTS).prop_map(Op::DeleteTenant),
        2 => (pick(TENANTS), pick(GROUPS)).prop_map(|(t, g)| Op::AddGroup(t, g)),
        1 => (pick(TENANTS), pick(GROUPS)).prop_map(|(t, g)| Op::DeleteGroup(t, g)),
        3 => (pick(TENANTS), pick(GROUPS), prop::option::weighted(0.8, pick(NAMES)))
            .prop_map(|(t, g, p)| Op::Assign(t, g, p)),
    ]
}

// ---------------------------------------------------------------------------------------------
// The reference model.

/// An answer reduced to what must agree: the value, or the sub code and field of the error.
type Answer = Result<String, (u32, Option<String>)>;

fn answer<T: std::fmt::Debug>(r: Result<T, Error>) -> Answer {
    r.map(|v| format!("{v:?}"))
        .map_err(|e| (e.code().number, e.field().map(str::to_owned)))
}

fn ok<T: std::fmt::Debug>(v: T) -> Answer {
    Ok(format!("{v:?}"))
}

fn invalid(field: &str) -> Answer {
    Err((100, Some(field.to_owned())))
}

const ALREADY_EXISTS: Answer = Err((11, None));
const INVALID_OPERATION: Answer = Err((18, None));
const NOT_DELETED: Answer = Err((21, None));

#[derive(Debug, Default)]
struct Model {
    platforms: BTreeMap<String, Platform>,
    default: Option<String>,
    properties: Properties,
    tenants: BTreeSet<String>,
    /// (tenant, group) → assigned platform
    groups: BTreeMap<(String, String), Option<String>>,
}

fn media(b: bool) -> MediaStream {
    if b {
        MediaStream::Dual
    } else {
        MediaStream::Single
    }
}

fn transport(n: u8) -> TransportProtocol {
    [
        TransportProtocol::Udp,
        TransportProtocol::Tcp,
        TransportProtocol::Unspecified,
    ][n as usize]
}

fn schema(n: u8) -> SchemaVersion {
    [
        SchemaVersion::V1_0,
        SchemaVersion::V2_0,
        SchemaVersion::V3_0,
    ][n as usize]
}

fn port_ok(p: i64) -> bool {
    (1..=65535).contains(&p)
}

impl Model {
    fn usage(&self, name: &str) -> usize {
        self.groups
            .values()
            .filter(|p| p.as_deref() == Some(name))
            .count()
    }

    fn apply(&mut self, op: &Op) -> Answer {
        match op {
            Op::Add {
                name,
                address,
                port,
                description,
                media: m,
                transport: t,
                schema: s,
                video,
            } => {
                let (n, n_ok) = NAMES[*name];
                let (a, a_ok) = ADDRESSES[*address];
                if !n_ok {
                    return invalid("name");
                }
                if !a_ok {
                    return invalid("netAddress");
                }
                if port.is_some_and(|p| !port_ok(p)) {
                    return invalid("port");
                }
                if description.is_some_and(|d| !DESCRIPTIONS[d].1) {
                    return invalid("description");
                }
                let n = text(n);
                if self.platforms.contains_key(&n) {
                    return ALREADY_EXISTS;
                }
                let p = Platform {
                    name: n.clone(),
                    net_address: text(a),
                    port: port.map(|p| p as u16),
                    media_stream: media(*m),
                    transport_protocol: transport(*t),
                    description: description.map(|d| text(DESCRIPTIONS[d].0)),
                    schema_version: schema(*s),
                    support_video_recording: *video,
                };
                let first = self.default.is_none();
                if first {
                    self.default = Some(n.clone());
                }
                self.platforms.insert(n, p.clone());
                ok(PlatformEntry {
                    platform: p,
                    is_default: first,
                })
            }
            Op::Modify {
                name,
                make_default,
                address,
                port,
                description,
                video,
            } => {
                let n = text(NAMES[*name].0);
                let Some(current) = self.platforms.get(&n) else {
                    return INVALID_OPERATION;
                };
                let mut next = current.clone();
                if let Some(a) = address {
                    let (a, a_ok) = ADDRESSES[*a];
                    if !a_ok {
                        return invalid("netAddress");
                    }
                    next.net_address = text(a);
                }
                if let Some(p) = port {
                    match p {
                        Some(p) if !port_ok(*p) => return invalid("port"),
                        Some(p) => next.port = Some(*p as u16),
                        None => next.port = None,
                    }
                }
                if let Some(d) = description {
                    match d {
                        Some(d) if !DESCRIPTIONS[*d].1 => return invalid("description"),
                        Some(d) => next.description = Some(text(DESCRIPTIONS[*d].0)),
                        None => next.description = None,
                    }
                }
                if let Some(v) = video {
                    next.support_video_recording = *v;
                }
                let was_default = self.default.as_deref() == Some(n.as_str());
                let is_default = match make_default {
                    Some(false) if was_default => return INVALID_OPERATION,
                    Some(true) => true,
                    _ => was_default,
                };
                if is_default {
                    self.default = Some(n.clone());
                }
                self.platforms.insert(n, next.clone());
                ok(PlatformEntry {
                    platform: next,
                    is_default,
                })
            }
            Op::Delete { name } => {
                let n = text(NAMES[*name].0);
                if !self.platforms.contains_key(&n) {
                    return INVALID_OPERATION;
                }
                let used = self.usage(&n);
                let is_default = self.default.as_deref() == Some(n.as_str());
                if used > 0 || (is_default && self.platforms.len() > 1) {
                    return NOT_DELETED;
                }
                self.platforms.remove(&n);
                if is_default {
                    self.default = None;
                }
                ok(())
            }
            Op::Properties {
                refresh,
                failures,
                wait,
                continue_call,
            } => {
                let mut next = self.properties;
                if let Some(v) = continue_call {
                    next.continue_call_after_recording_failure = *v;
                }
                if let Some(v) = refresh {
                    if !(10..=300).contains(v) {
                        return invalid("refreshPeriodSeconds");
                    }
                    next.refresh_period_seconds = *v as u32;
                }
                if let Some(v) = failures {
                    if !(1..=10).contains(v) {
                        return invalid("maxConsecutiveFailures");
                    }
                    next.max_consecutive_failures = *v as u32;
                }
                if let Some(v) = wait {
                    if !(50..=10_000).contains(v) {
                        return invalid("maxResponseWaitTimeMilliseconds");
                    }
                    next.max_response_wait_time_milliseconds = *v as u32;
                }
                self.properties = next;
                ok(next)
            }
            Op::AddTenant(t) => {
                let (t, t_ok) = TENANTS[*t];
                let t = &text(t);
                if !t_ok {
                    return invalid("tenantId");
                }
                if !self.tenants.insert(t.to_owned()) {
                    return ALREADY_EXISTS;
                }
                ok(Tenant {
                    tenant_id: t.to_owned(),
                })
            }
            Op::DeleteTenant(t) => {
                let (t, t_ok) = TENANTS[*t];
                let t = &text(t);
                if !t_ok {
                    return invalid("tenantId");
                }
                if !self.tenants.contains(t) {
                    return INVALID_OPERATION;
                }
                if self.groups.keys().any(|(gt, _)| gt == t) {
                    return NOT_DELETED;
                }
                self.tenants.remove(t);
                ok(())
            }
            Op::AddGroup(t, g) => {
                let ((t, t_ok), (g, g_ok)) = (TENANTS[*t], GROUPS[*g]);
                let t = &text(t);
                if !t_ok {
                    return invalid("tenantId");
                }
                if !g_ok {
                    return invalid("groupId");
                }
                if !self.tenants.contains(t) {
                    return INVALID_OPERATION;
                }
                let key = (t.to_owned(), g.to_owned());
                if self.groups.contains_key(&key) {
                    return ALREADY_EXISTS;
                }
                self.groups.insert(key, None);
                ok(Group {
                    tenant_id: t.to_owned(),
                    group_id: g.to_owned(),
                    platform: None,
                })
            }
            Op::DeleteGroup(t, g) => {
                let ((t, t_ok), (g, g_ok)) = (TENANTS[*t], GROUPS[*g]);
                let t = &text(t);
                if !t_ok {
                    return invalid("tenantId");
                }
                if !g_ok {
                    return invalid("groupId");
                }
                if self.groups.remove(&(t.to_owned(), g.to_owned())).is_none() {
                    return INVALID_OPERATION;
                }
                ok(())
            }
            Op::Assign(t, g, p) => {
                let ((t, t_ok), (g, g_ok)) = (TENANTS[*t], GROUPS[*g]);
                let t = &text(t);
                if !t_ok {
                    return invalid("tenantId");
                }
                if !g_ok {
                    return invalid("groupId");
                }
                let key = (t.to_owned(), g.to_owned());
                if !self.groups.contains_key(&key) {
                    return INVALID_OPERATION;
                }
                let p = p.map(|p| text(NAMES[p].0));
                if let Some(name) = &p
                    && !self.platforms.contains_key(name)
                {
                    return INVALID_OPERATION;
                }
                self.groups.insert(key, p.clone());
                ok(p)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The same operation on the real service.

async fn run(service: &Service, op: &Op) -> Answer {
    let who = Principal::console();
    match op {
        Op::Add {
            name,
            address,
            port,
            description,
            media: m,
            transport: t,
            schema: s,
            video,
        } => answer(
            service
                .add_platform(
                    &who,
                    NewPlatform {
                        name: text(NAMES[*name].0),
                        net_address: text(ADDRESSES[*address].0),
                        port: *port,
                        media_stream: media(*m),
                        transport_protocol: transport(*t),
                        description: description.map(|d| text(DESCRIPTIONS[d].0)),
                        schema_version: schema(*s),
                        support_video_recording: *video,
                    },
                )
                .await,
        ),
        Op::Modify {
            name,
            make_default,
            address,
            port,
            description,
            video,
        } => answer(
            service
                .modify_platform(
                    &who,
                    &text(NAMES[*name].0),
                    PlatformChange {
                        make_default: *make_default,
                        net_address: address.map(|a| text(ADDRESSES[a].0)),
                        port: *port,
                        description: description.map(|d| d.map(|d| text(DESCRIPTIONS[d].0))),
                        support_video_recording: *video,
                        ..Default::default()
                    },
                )
                .await,
        ),
        Op::Delete { name } => answer(service.delete_platform(&who, &text(NAMES[*name].0)).await),
        Op::Properties {
            refresh,
            failures,
            wait,
            continue_call,
        } => answer(
            service
                .modify_properties(
                    &who,
                    PropertiesChange {
                        continue_call_after_recording_failure: *continue_call,
                        refresh_period_seconds: *refresh,
                        max_consecutive_failures: *failures,
                        max_response_wait_time_milliseconds: *wait,
                        ..Default::default()
                    },
                )
                .await,
        ),
        Op::AddTenant(t) => answer(service.add_tenant(&who, &text(TENANTS[*t].0)).await),
        Op::DeleteTenant(t) => answer(service.delete_tenant(&who, &text(TENANTS[*t].0)).await),
        Op::AddGroup(t, g) => answer(
            service
                .add_group(&who, &text(TENANTS[*t].0), GROUPS[*g].0)
                .await,
        ),
        Op::DeleteGroup(t, g) => answer(
            service
                .delete_group(&who, &text(TENANTS[*t].0), GROUPS[*g].0)
                .await,
        ),
        Op::Assign(t, g, p) => answer(
            service
                .set_group_platform(
                    &who,
                    &text(TENANTS[*t].0),
                    GROUPS[*g].0,
                    p.map(|p| text(NAMES[p].0)),
                )
                .await,
        ),
    }
}

/// The whole state as the service reads it, and as the model has it.
fn state_of_service(service: &Service) -> String {
    let who = Principal::console();
    let list = service.platforms(&who).expect("platforms");
    let usage: Vec<(String, Vec<GroupRef>)> = list
        .platforms
        .iter()
        .map(|p| (p.name.clone(), service.usage(&who, &p.name).expect("usage")))
        .collect();
    let mut groups = Vec::new();
    for t in service.tenants(&who).expect("tenants") {
        for g in service.groups(&who, &t.tenant_id).expect("groups") {
            let assigned = service
                .group_platform(&who, &g.tenant_id, &g.group_id)
                .expect("assignment");
            groups.push((g, assigned));
        }
    }
    format!(
        "{list:?}\n{:?}\n{:?}\n{usage:?}\n{groups:?}",
        service.properties(&who).expect("properties"),
        service.tenants(&who).expect("tenants"),
    )
}

fn state_of_model(m: &Model) -> String {
    let list = PlatformList {
        system_default: m.default.clone(),
        platforms: m.platforms.values().cloned().collect(),
    };
    let usage: Vec<(String, Vec<GroupRef>)> = m
        .platforms
        .keys()
        .map(|name| {
            let refs = m
                .groups
                .iter()
                .filter(|(_, p)| p.as_deref() == Some(name.as_str()))
                .map(|((t, g), _)| GroupRef {
                    tenant_id: t.clone(),
                    group_id: g.clone(),
                })
                .collect();
            (name.clone(), refs)
        })
        .collect();
    let tenants: Vec<Tenant> = m
        .tenants
        .iter()
        .map(|t| Tenant {
            tenant_id: t.clone(),
        })
        .collect();
    let groups: Vec<(Group, Option<String>)> = m
        .groups
        .iter()
        .map(|((t, g), p)| {
            (
                Group {
                    tenant_id: t.clone(),
                    group_id: g.clone(),
                    platform: p.clone(),
                },
                p.clone(),
            )
        })
        .collect();
    format!(
        "{list:?}\n{:?}\n{tenants:?}\n{usage:?}\n{groups:?}",
        m.properties
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES runs more (or fewer) for a longer search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(128),
        max_shrink_iters: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn service_agrees_with_the_reference_model(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(StoreOptions::new(dir.path())).expect("store opens");
        let service = runtime
            .block_on(Service::new(Arc::new(store), SessionSettings::default()))
            .expect("service");
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let got = runtime.block_on(run(&service, op));
            let want = model.apply(op);
            prop_assert_eq!(got, want, "operation {} of {}: {:?}", i + 1, ops.len(), op);
            // The invariants, after every step.
            let list = service.platforms(&Principal::console()).expect("platforms");
            prop_assert_eq!(list.platforms.is_empty(), list.system_default.is_none());
            if let Some(d) = &list.system_default {
                prop_assert!(list.platforms.iter().any(|p| &p.name == d));
            }
        }
        prop_assert_eq!(state_of_service(&service), state_of_model(&model));
    }
}
