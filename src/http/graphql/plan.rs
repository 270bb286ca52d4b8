//! Plans: queries over plain data answered without async-graphql's executor.
//!
//! async-graphql resolves every field of an answer through a boxed future and a map insertion,
//! list items included: a list of 100 platforms costs 900 futures. Most of what dashboards ask
//! is plain data that is already in memory (the platform list, the properties, tenants, groups,
//! the caller), so once async-graphql has validated and answered a document without an error,
//! the document's *plan* is kept: the fields to write, in order, with their response keys,
//! fragments expanded, `@skip`/`@include` applied and arguments resolved. The same document
//! again (the same tokens: comments, spacing and commas do not count) with the same operation
//! name and variables is answered from its plan, writing the JSON directly, with the same bytes
//! async-graphql would have written. A document with anything else (reachability, usage,
//! introspection, mutations, variables with defaults) gets no plan; a planned answer that meets
//! an error (a resolver refusing the caller) is given up and run by async-graphql, so errors
//! always come from async-graphql.
//!
//! Kept plans are bounded in bytes ([`BUDGET`]); past the bound the memory starts over.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field as FieldNode, OperationType, Selection,
    SelectionSet,
};
use async_graphql::resolver_utils::EnumType;
use async_graphql::{Positioned, Request, Value, Variables};

use super::{limits, types};
use crate::model::{self, Principal};
use crate::service::Service;

/// Bytes of plans kept at most (keys included).
pub const BUDGET: usize = 4 * 1024 * 1024;
/// What one kept plan costs per byte of its key: the plan and the parsed document kept with
/// it take a few hundred bytes per field, and a field takes at least a few bytes of text.
const BYTES_PER_KEY_BYTE: usize = 48;
const ENTRY_OVERHEAD: usize = 256;
/// Fragment spreads followed at most, nested (the shape limits bound them well below).
const MAX_NESTING: usize = 64;

/// The kept plans, by document (as tokens), operation name and variables.
pub struct Plans {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    plans: HashMap<String, Arc<Plan>>,
    bytes: usize,
}

impl Plans {
    pub fn new() -> Plans {
        Plans {
            kept: Mutex::default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<Plan>> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.plans.get(key).cloned()
    }

    /// Keeps the plan of a document async-graphql answered without an error.
    pub fn put(&self, key: String, plan: Plan) {
        let size = key.len() * BYTES_PER_KEY_BYTE + ENTRY_OVERHEAD;
        if size > BUDGET {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.bytes + size > BUDGET {
            *kept = Kept::default();
        }
        if kept.plans.insert(key, Arc::new(plan)).is_none() {
            kept.bytes += size;
        }
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.kept.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

/// What a request's plan is kept under: the document's tokens (comments, spacing and commas
/// left out), the operation name and the variables.
pub fn key(request: &Request) -> Option<String> {
    let mut key = tokens(&request.query)?;
    key.push('\0');
    key.push_str(request.operation_name.as_deref().unwrap_or(""));
    key.push('\0');
    key.push_str(&serde_json::to_string(&request.variables).ok()?);
    Some(key)
}

/// The tokens of a GraphQL document, one space between them. Strings are kept as written;
/// other tokens as written too (runs of name, number and `.` characters stay together, which
/// is coarser than GraphQL's lexer but never joins what it separates). Documents with the same
/// tokens parse to the same document.
fn tokens(source: &str) -> Option<String> {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'+');
    while i < bytes.len() {
        let start = i;
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                loop {
                    if i >= bytes.len() {
                        return None;
                    }
                    if bytes[i..].starts_with(b"\\\"\"\"") {
                        i += 4;
                    } else if bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b if word(b) => {
                while i < bytes.len() && word(bytes[i]) {
                    i += 1;
                }
            }
            _ => {
                // One punctuator, or one character of anything else (whole, for UTF-8).
                i += 1;
                while i < bytes.len() && !source.is_char_boundary(i) {
                    i += 1;
                }
            }
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(source.get(start..i)?);
    }
    Some(out)
}

/// A field to write: its key as JSON (`"key":`) and what it holds.
#[derive(Debug)]
struct Field<T> {
    key: Box<str>,
    what: T,
}

type Fields<T> = Vec<Field<T>>;

/// The plan of one query operation.
#[derive(Debug)]
pub struct Plan {
    root: Fields<Root>,
    /// The length of its last answer: the next one is written into that much room at once.
    last_length: AtomicUsize,
    /// The document planned, for the complexity count, which depends on the data.
    pub document: ExecutableDocument,
    /// The operation's name as its metrics label is made of (see `labels::selected`).
    pub label: Option<Option<String>>,
}

#[derive(Debug)]
enum Root {
    Typename,
    Platforms(Fields<ListField>),
    Platform(String, Fields<PlatformField>),
    Properties(Fields<PropertiesField>),
    Tenants(Fields<TenantField>),
    Tenant(String, Fields<TenantField>),
    Groups(String, Fields<GroupField>),
    Group(String, String, Fields<GroupField>),
    Me(Fields<MeField>),
}

#[derive(Debug)]
enum ListField {
    Typename,
    SystemDefault,
    Platforms(Fields<PlatformField>),
}

#[derive(Debug, Clone, Copy)]
enum PlatformField {
    Typename,
    Name,
    NetAddress,
    Port,
    MediaStream,
    TransportProtocol,
    Description,
    SchemaVersion,
    SupportVideoRecording,
    IsDefault,
}

#[derive(Debug, Clone, Copy)]
enum PropertiesField {
    Typename,
    ContinueCallAfterRecordingFailure,
    RefreshPeriodSeconds,
    MaxConsecutiveFailures,
    MaxResponseWaitTimeMilliseconds,
    ContinueCallAfterVideoRecordingFailure,
}

#[derive(Debug)]
enum TenantField {
    Typename,
    TenantId,
    Groups(Fields<GroupField>),
}

#[derive(Debug, Clone, Copy)]
enum GroupField {
    Typename,
    TenantId,
    GroupId,
    CallRecordingPlatform,
}

#[derive(Debug, Clone, Copy)]
enum MeField {
    Typename,
    Username,
    Level,
    TenantId,
    GroupId,
}

/// The plan of the operation `operation_name` selects in `document` (with `variables`), or `None` when it has anything
/// a plan does not cover.
pub fn plan(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    label: Option<Option<String>>,
) -> Option<Plan> {
    // Introspection is gated before execution, by caller: never planned.
    if limits::introspects(document) {
        return None;
    }
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()?
        }
        _ => return None,
    };
    let operation = &operation.node;
    if operation.ty != OperationType::Query
        || !operation.directives.is_empty()
        || operation
            .variable_definitions
            .iter()
            .any(|v| v.node.default_value.is_some())
    {
        return None;
    }
    let planner = Planner {
        document,
        variables,
    };
    Some(Plan {
        root: planner.fields(&[&operation.selection_set.node], 0)?,
        last_length: AtomicUsize::new(0),
        document: document.clone(),
        label,
    })
}

struct Planner<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
}

/// The type a plan's fields belong to.
trait Shape: Sized {
    const TYPE: &'static str;
    fn typename() -> Self;
    /// The field `name` (its arguments and selections in `field`, all of them the same), or
    /// `None` when a plan does not cover it.
    fn field(
        planner: &Planner<'_>,
        name: &str,
        fields: &[&FieldNode],
        depth: usize,
    ) -> Option<Self>;
}

impl<'a> Planner<'a> {
    /// Whether `@skip`/`@include` leave a selection out, as async-graphql decides it.
    fn skipped(&self, directives: &[Positioned<async_graphql::parser::types::Directive>]) -> bool {
        for directive in directives {
            let include = match directive.node.name.node.as_str() {
                "skip" => false,
                "include" => true,
                _ => continue,
            };
            if let Some(condition) = directive.node.get_argument("if") {
                let value = condition
                    .node
                    .clone()
                    .into_const_with(|name| self.variables.get(&name).cloned().ok_or(()))
                    .unwrap_or_default();
                let value: bool = async_graphql::InputType::parse(Some(value)).unwrap_or_default();
                if include != value {
                    return true;
                }
            }
        }
        false
    }

    /// The fields of `sets` on the object type `type_name`, by response key in the order they
    /// first appear, fragments expanded.
    fn collect(
        &self,
        sets: &[&'a SelectionSet],
        type_name: &str,
        out: &mut Vec<(&'a str, Vec<&'a FieldNode>)>,
        depth: usize,
    ) -> Option<()> {
        if depth > MAX_NESTING {
            return None;
        }
        for set in sets {
            for selection in &set.items {
                if self.skipped(selection.node.directives()) {
                    continue;
                }
                match &selection.node {
                    Selection::Field(field) => {
                        let key = field.node.response_key().node.as_str();
                        match out.iter_mut().find(|(k, _)| *k == key) {
                            Some((_, fields)) => fields.push(&field.node),
                            None => out.push((key, vec![&field.node])),
                        }
                    }
                    Selection::FragmentSpread(spread) => {
                        let fragment = self
                            .document
                            .fragments
                            .get(&spread.node.fragment_name.node)?;
                        if fragment.node.type_condition.node.on.node != type_name {
                            return None;
                        }
                        self.collect(
                            &[&fragment.node.selection_set.node],
                            type_name,
                            out,
                            depth + 1,
                        )?;
                    }
                    Selection::InlineFragment(inline) => {
                        if let Some(condition) = &inline.node.type_condition
                            && condition.node.on.node != type_name
                        {
                            return None;
                        }
                        self.collect(
                            &[&inline.node.selection_set.node],
                            type_name,
                            out,
                            depth + 1,
                        )?;
                    }
                }
            }
        }
        Some(())
    }

    fn fields<S: Shape>(&self, sets: &[&'a SelectionSet], depth: usize) -> Option<Fields<S>> {
        let mut collected = Vec::new();
        self.collect(sets, S::TYPE, &mut collected, depth)?;
        // async-graphql answers null for an object whose fields were all skipped.
        if collected.is_empty() {
            return None;
        }
        collected
            .into_iter()
            .map(|(key, fields)| {
                let first = fields[0];
                let name = first.name.node.as_str();
                let same = fields.iter().all(|f| {
                    f.name.node == first.name.node
                        && f.arguments.len() == first.arguments.len()
                        && f.arguments
                            .iter()
                            .zip(&first.arguments)
                            .all(|(a, b)| a.0.node == b.0.node && a.1.node == b.1.node)
                });
                if !same {
                    return None;
                }
                let what = if name == "__typename" {
                    S::typename()
                } else {
                    S::field(self, name, &fields, depth)?
                };
                Some(Field {
                    key: format!("{}:", serde_json::to_string(key).ok()?).into(),
                    what,
                })
            })
            .collect()
    }

    /// The selections of an object field, each occurrence on its own answering something (an
    /// occurrence whose fields were all skipped is null in async-graphql's merge).
    fn object<S: Shape>(&self, fields: &[&'a FieldNode], depth: usize) -> Option<Fields<S>> {
        let sets: Vec<&SelectionSet> = fields.iter().map(|f| &f.selection_set.node).collect();
        if sets.len() > 1 {
            for set in &sets {
                self.fields::<S>(&[set], depth + 1)?;
            }
        }
        self.fields(&sets, depth + 1)
    }

    /// A string argument, written or from a variable.
    fn string(&self, field: &FieldNode, name: &str) -> Option<String> {
        let value = field
            .get_argument(name)?
            .node
            .clone()
            .into_const_with(|variable| self.variables.get(&variable).cloned().ok_or(()))
            .ok()?;
        match value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A leaf field without arguments.
fn leaf<T>(fields: &[&FieldNode], what: T) -> Option<T> {
    fields
        .iter()
        .all(|f| f.arguments.is_empty() && f.selection_set.node.items.is_empty())
        .then_some(what)
}

/// An object field whose only arguments are `names`.
fn arguments_are(fields: &[&FieldNode], names: &[&str]) -> bool {
    let first = fields[0];
    first.arguments.len() == names.len()
        && first
            .arguments
            .iter()
            .all(|(name, _)| names.contains(&name.node.as_str()))
}

impl Shape for Root {
    const TYPE: &'static str = "Query";
    fn typename() -> Self {
        Root::Typename
    }
    fn field(
        planner: &Planner<'_>,
        name: &str,
        fields: &[&FieldNode],
        depth: usize,
    ) -> Option<Self> {
        let first = fields[0];
        let args = |names: &[&str]| arguments_are(fields, names).then_some(());
        Some(match name {
            "callRecordingPlatforms" => {
                args(&[])?;
                Root::Platforms(planner.object(fields, depth)?)
            }
            "callRecordingPlatform" => {
                args(&["name"])?;
                Root::Platform(
                    planner.string(first, "name")?,
                    planner.object(fields, depth)?,
                )
            }
            "callRecordingProperties" => {
                args(&[])?;
                Root::Properties(planner.object(fields, depth)?)
            }
            "tenants" => {
                args(&[])?;
                Root::Tenants(planner.object(fields, depth)?)
            }
            "tenant" => {
                args(&["tenantId"])?;
                Root::Tenant(
                    planner.string(first, "tenantId")?,
                    planner.object(fields, depth)?,
                )
            }
            "groups" => {
                args(&["tenantId"])?;
                Root::Groups(
                    planner.string(first, "tenantId")?,
                    planner.object(fields, depth)?,
                )
            }
            "group" => {
                args(&["tenantId", "groupId"])?;
                Root::Group(
                    planner.string(first, "tenantId")?,
                    planner.string(first, "groupId")?,
                    planner.object(fields, depth)?,
                )
            }
            "me" => {
                args(&[])?;
                Root::Me(planner.object(fields, depth)?)
            }
            _ => return None,
        })
    }
}

impl Shape for ListField {
    const TYPE: &'static str = "CallRecordingPlatformList";
    fn typename() -> Self {
        ListField::Typename
    }
    fn field(
        planner: &Planner<'_>,
        name: &str,
        fields: &[&FieldNode],
        depth: usize,
    ) -> Option<Self> {
        match name {
            "systemDefault" => leaf(fields, ListField::SystemDefault),
            "platforms" if arguments_are(fields, &[]) => {
                Some(ListField::Platforms(planner.object(fields, depth)?))
            }
            _ => None,
        }
    }
}

impl Shape for PlatformField {
    const TYPE: &'static str = "CallRecordingPlatform";
    fn typename() -> Self {
        PlatformField::Typename
    }
    fn field(_: &Planner<'_>, name: &str, fields: &[&FieldNode], _: usize) -> Option<Self> {
        use PlatformField as F;
        let what = match name {
            "name" => F::Name,
            "netAddress" => F::NetAddress,
            "port" => F::Port,
            "mediaStream" => F::MediaStream,
            "transportProtocol" => F::TransportProtocol,
            "description" => F::Description,
            "schemaVersion" => F::SchemaVersion,
            "supportVideoRecording" => F::SupportVideoRecording,
            "isDefault" => F::IsDefault,
            // reachability changes without a commit; usage reads an index per platform.
            _ => return None,
        };
        leaf(fields, what)
    }
}

impl Shape for PropertiesField {
    const TYPE: &'static str = "CallRecordingProperties";
    fn typename() -> Self {
        PropertiesField::Typename
    }
    fn field(_: &Planner<'_>, name: &str, fields: &[&FieldNode], _: usize) -> Option<Self> {
        use PropertiesField as F;
        let what = match name {
            "continueCallAfterRecordingFailure" => F::ContinueCallAfterRecordingFailure,
            "refreshPeriodSeconds" => F::RefreshPeriodSeconds,
            "maxConsecutiveFailures" => F::MaxConsecutiveFailures,
            "maxResponseWaitTimeMilliseconds" => F::MaxResponseWaitTimeMilliseconds,
            "continueCallAfterVideoRecordingFailure" => F::ContinueCallAfterVideoRecordingFailure,
            _ => return None,
        };
        leaf(fields, what)
    }
}

impl Shape for TenantField {
    const TYPE: &'static str = "Tenant";
    fn typename() -> Self {
        TenantField::Typename
    }
    fn field(
        planner: &Planner<'_>,
        name: &str,
        fields: &[&FieldNode],
        depth: usize,
    ) -> Option<Self> {
        match name {
            "tenantId" => leaf(fields, TenantField::TenantId),
            "groups" if arguments_are(fields, &[]) => {
                Some(TenantField::Groups(planner.object(fields, depth)?))
            }
            _ => None,
        }
    }
}

impl Shape for GroupField {
    const TYPE: &'static str = "Group";
    fn typename() -> Self {
        GroupField::Typename
    }
    fn field(_: &Planner<'_>, name: &str, fields: &[&FieldNode], _: usize) -> Option<Self> {
        let what = match name {
            "tenantId" => GroupField::TenantId,
            "groupId" => GroupField::GroupId,
            "callRecordingPlatform" => GroupField::CallRecordingPlatform,
            _ => return None,
        };
        leaf(fields, what)
    }
}

impl Shape for MeField {
    const TYPE: &'static str = "Me";
    fn typename() -> Self {
        MeField::Typename
    }
    fn field(_: &Planner<'_>, name: &str, fields: &[&FieldNode], _: usize) -> Option<Self> {
        let what = match name {
            "username" => MeField::Username,
            "level" => MeField::Level,
            "tenantId" => MeField::TenantId,
            "groupId" => MeField::GroupId,
            _ => return None,
        };
        leaf(fields, what)
    }
}

/// Any failure of a planned answer: async-graphql runs the query instead, and says why.
struct GiveUp;

type Written = Result<(), GiveUp>;

impl From<crate::error::Error> for GiveUp {
    fn from(_: crate::error::Error) -> Self {
        GiveUp
    }
}

impl From<std::io::Error> for GiveUp {
    fn from(_: std::io::Error) -> Self {
        GiveUp
    }
}

impl From<serde_json::Error> for GiveUp {
    fn from(_: serde_json::Error) -> Self {
        GiveUp
    }
}

/// The answer of `plan` for `who`, as async-graphql would render it (`{"data":{…}}`), or
/// `None` when a resolver fails: async-graphql then runs the query and renders the error.
pub fn answer(plan: &Plan, service: &Service, who: &Principal) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(plan.last_length.load(Ordering::Relaxed).max(256) + 64);
    out.extend_from_slice(b"{\"data\":");
    object(&mut out, &plan.root, |out, what| {
        root(out, what, service, who)
    })
    .ok()?;
    out.push(b'}');
    plan.last_length.store(out.len(), Ordering::Relaxed);
    Some(out)
}

fn object<T>(
    out: &mut Vec<u8>,
    fields: &[Field<T>],
    mut write: impl FnMut(&mut Vec<u8>, &T) -> Written,
) -> Written {
    out.push(b'{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(field.key.as_bytes());
        write(out, &field.what)?;
    }
    out.push(b'}');
    Ok(())
}

fn list<I>(
    out: &mut Vec<u8>,
    items: I,
    mut write: impl FnMut(&mut Vec<u8>, I::Item) -> Written,
) -> Written
where
    I: IntoIterator,
{
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item)?;
    }
    out.push(b']');
    Ok(())
}

fn string(out: &mut Vec<u8>, text: &str) -> Written {
    serde_json::to_writer(&mut *out, text)?;
    Ok(())
}

fn optional(out: &mut Vec<u8>, text: Option<&str>) -> Written {
    match text {
        Some(text) => string(out, text),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

fn boolean(out: &mut Vec<u8>, value: bool) -> Written {
    out.extend_from_slice(if value { b"true" } else { b"false" });
    Ok(())
}

fn number(out: &mut Vec<u8>, value: impl std::fmt::Display) -> Written {
    write!(out, "{value}")?;
    Ok(())
}

/// An enum value by its GraphQL name, as the schema's enum declares it.
fn enumeration<E: EnumType + PartialEq + 'static>(out: &mut Vec<u8>, value: E) -> Written {
    let item = E::items()
        .iter()
        .find(|item| item.value == value)
        .ok_or(GiveUp)?;
    string(out, item.name)
}

fn root(out: &mut Vec<u8>, what: &Root, service: &Service, who: &Principal) -> Written {
    match what {
        Root::Typename => string(out, "Query"),
        Root::Platforms(fields) => {
            let platforms = service.platforms(who)?;
            object(out, fields, |out, what| match what {
                ListField::Typename => string(out, ListField::TYPE),
                ListField::SystemDefault => optional(out, platforms.system_default.as_deref()),
                ListField::Platforms(fields) => {
                    let default = platforms.system_default.as_deref();
                    list(out, &platforms.platforms, |out, p| {
                        platform(out, fields, p, default == Some(p.name.as_str()))
                    })
                }
            })
        }
        Root::Platform(name, fields) => match service.platform(who, name)? {
            Some(entry) => platform(out, fields, &entry.platform, entry.is_default),
            None => optional(out, None),
        },
        Root::Properties(fields) => {
            let p = service.properties(who)?;
            object(out, fields, |out, what| {
                use PropertiesField as F;
                match what {
                    F::Typename => string(out, F::TYPE),
                    F::ContinueCallAfterRecordingFailure => {
                        boolean(out, p.continue_call_after_recording_failure)
                    }
                    F::RefreshPeriodSeconds => number(out, p.refresh_period_seconds),
                    F::MaxConsecutiveFailures => number(out, p.max_consecutive_failures),
                    F::MaxResponseWaitTimeMilliseconds => {
                        number(out, p.max_response_wait_time_milliseconds)
                    }
                    F::ContinueCallAfterVideoRecordingFailure => {
                        boolean(out, p.continue_call_after_video_recording_failure)
                    }
                }
            })
        }
        Root::Tenants(fields) => {
            let tenants = service.tenants(who)?;
            list(out, &tenants, |out, t| tenant(out, fields, t, service, who))
        }
        Root::Tenant(id, fields) => match service.tenant(who, id)? {
            Some(t) => tenant(out, fields, &t, service, who),
            None => optional(out, None),
        },
        Root::Groups(tenant_id, fields) => {
            let groups = service.groups(who, tenant_id)?;
            list(out, &groups, |out, g| group(out, fields, g))
        }
        Root::Group(tenant_id, group_id, fields) => {
            match service.group(who, tenant_id, group_id)? {
                Some(g) => group(out, fields, &g),
                None => optional(out, None),
            }
        }
        Root::Me(fields) => object(out, fields, |out, what| match what {
            MeField::Typename => string(out, MeField::TYPE),
            MeField::Username => string(out, &who.username),
            MeField::Level => enumeration(out, types::UserLevel::from(who.level)),
            MeField::TenantId => optional(out, who.tenant_id.as_deref()),
            MeField::GroupId => optional(out, who.group_id.as_deref()),
        }),
    }
}

fn platform(
    out: &mut Vec<u8>,
    fields: &[Field<PlatformField>],
    p: &model::Platform,
    is_default: bool,
) -> Written {
    object(out, fields, |out, what| {
        use PlatformField as F;
        match what {
            F::Typename => string(out, F::TYPE),
            F::Name => string(out, &p.name),
            F::NetAddress => string(out, &p.net_address),
            F::Port => match p.port {
                Some(port) => number(out, port),
                None => optional(out, None),
            },
            F::MediaStream => enumeration(out, types::MediaStream::from(p.media_stream)),
            F::TransportProtocol => {
                enumeration(out, types::TransportProtocol::from(p.transport_protocol))
            }
            F::Description => optional(out, p.description.as_deref()),
            F::SchemaVersion => enumeration(out, types::SchemaVersion::from(p.schema_version)),
            F::SupportVideoRecording => boolean(out, p.support_video_recording),
            F::IsDefault => boolean(out, is_default),
        }
    })
}

fn tenant(
    out: &mut Vec<u8>,
    fields: &[Field<TenantField>],
    t: &model::Tenant,
    service: &Service,
    who: &Principal,
) -> Written {
    object(out, fields, |out, what| match what {
        TenantField::Typename => string(out, TenantField::TYPE),
        TenantField::TenantId => string(out, &t.tenant_id),
        TenantField::Groups(fields) => {
            let groups = service.groups(who, &t.tenant_id)?;
            list(out, &groups, |out, g| group(out, fields, g))
        }
    })
}

fn group(out: &mut Vec<u8>, fields: &[Field<GroupField>], g: &model::Group) -> Written {
    object(out, fields, |out, what| match what {
        GroupField::Typename => string(out, GroupField::TYPE),
        GroupField::TenantId => string(out, &g.tenant_id),
        GroupField::GroupId => string(out, &g.group_id),
        GroupField::CallRecordingPlatform => optional(out, g.platform.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_spacing_and_commas_are_not_tokens() {
        let a = tokens("# 1.2\n{ me { username, level } }").expect("tokens");
        let b = tokens("{me{username level}}\n# another comment").expect("tokens");
        assert_eq!(a, b);
        assert_eq!(a, "{ me { username level } }");
    }

    #[test]
    fn strings_are_tokens_as_written() {
        let a = tokens(r#"{ tenant(tenantId: "a # b, c") { tenantId } }"#).expect("tokens");
        assert!(a.contains(r#""a # b, c""#), "{a}");
        let b = tokens(r#"{ tenant(tenantId: "a\" #") { tenantId } }"#).expect("tokens");
        assert!(b.contains(r#""a\" #""#), "{b}");
        let block = tokens("{ tenant(tenantId: \"\"\"x \\\"\"\" # y\"\"\") { tenantId } }")
            .expect("tokens");
        assert!(block.contains("\"\"\"x \\\"\"\" # y\"\"\""), "{block}");
        assert_ne!(
            tokens(r#"{ tenant(tenantId: "a b") { tenantId } }"#),
            tokens(r#"{ tenant(tenantId: "a  b") { tenantId } }"#)
        );
    }

    #[test]
    fn kept_plans_stay_within_the_budget() {
        let plans = Plans::new();
        let mut most = 0;
        for i in 0..2000 {
            let key = format!("{i} {}", "x".repeat(1000));
            let plan = Plan {
                root: Vec::new(),
                last_length: AtomicUsize::new(0),
                document: async_graphql::parser::parse_query("{ me { username } }")
                    .expect("parses"),
                label: None,
            };
            plans.put(key, plan);
            assert!(plans.bytes() <= BUDGET, "{} > {BUDGET}", plans.bytes());
            most = most.max(plans.bytes());
        }
        assert!(most > BUDGET * 3 / 4, "the budget is used: {most}");
    }
}
