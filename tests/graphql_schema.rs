//! schema.graphql at the repository root is the SDL the code builds.

use callrec_gateway::http::graphql::sdl;

const REGENERATE: &str = "regenerate it with `cargo run -- schema > schema.graphql`";

#[test]
fn schema_graphql_is_what_the_code_builds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let on_disk = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {path} ({e}); {REGENERATE}"));
    let built = sdl();
    if on_disk != built {
        let first = on_disk
            .lines()
            .zip(built.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(built.lines().count()));
        panic!(
            "schema.graphql differs from the schema the code builds, from line {}:\n  file: {:?}\n  code: {:?}\n{REGENERATE}",
            first + 1,
            on_disk.lines().nth(first),
            built.lines().nth(first),
        );
    }
}

#[test]
fn the_schema_subcommand_prints_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_callrec-gateway"))
        .arg("schema")
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).expect("UTF-8"), sdl());
}

/// Fields of the same name with different types in the members of one union, or in an
/// interface and the types implementing it, as `(abstract type, field, [type, type])`.
/// graphql-js's field-merging rule makes a document selecting both invalid, so clients and
/// code generators refuse the natural "every event" subscription.
fn clashing_fields(sdl: &str) -> Vec<(String, String, Vec<String>)> {
    use std::collections::{BTreeMap, BTreeSet};

    use async_graphql::parser::parse_schema;
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

    let document = parse_schema(sdl).expect("the SDL parses");
    let mut fields: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let ty = &ty.node;
        let name = ty.name.node.to_string();
        let own = |list: &[async_graphql::Positioned<
            async_graphql::parser::types::FieldDefinition,
        >]| {
            list.iter()
                .map(|f| (f.node.name.node.to_string(), f.node.ty.node.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        match &ty.kind {
            TypeKind::Object(object) => {
                fields.insert(name.clone(), own(&object.fields));
                for interface in &object.implements {
                    groups
                        .entry(interface.node.to_string())
                        .or_default()
                        .insert(name.clone());
                }
            }
            TypeKind::Interface(interface) => {
                fields.insert(name.clone(), own(&interface.fields));
                groups.entry(name.clone()).or_default().insert(name.clone());
            }
            TypeKind::Union(union) => {
                let members = groups.entry(name.clone()).or_default();
                members.extend(union.members.iter().map(|m| m.node.to_string()));
            }
            _ => {}
        }
    }
    let mut clashes = Vec::new();
    for (group, members) in &groups {
        let mut by_field: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for member in members {
            for (field, ty) in fields.get(member).into_iter().flatten() {
                by_field.entry(field).or_default().insert(ty);
            }
        }
        for (field, types) in by_field {
            if types.len() > 1 {
                clashes.push((
                    group.clone(),
                    field.to_owned(),
                    types.into_iter().map(str::to_owned).collect(),
                ));
            }
        }
    }
    clashes
}

#[test]
fn fields_of_the_same_name_in_a_union_or_interface_have_the_same_type() {
    assert_eq!(clashing_fields(&sdl()), vec![]);

    // The check finds what it looks for.
    let bad = "
        type Added { platform: Platform! name: String! }
        type Assigned { platform: String name: String! }
        type Platform { name: String! }
        union Event = Added | Assigned
        interface Named { name: String! label: Int }
        type Thing implements Named { name: String! label: String }
        type Query { event: Event thing: Named }
    ";
    assert_eq!(
        clashing_fields(bad),
        vec![
            (
                "Event".to_owned(),
                "platform".to_owned(),
                vec!["Platform!".to_owned(), "String".to_owned()]
            ),
            (
                "Named".to_owned(),
                "label".to_owned(),
                vec!["Int".to_owned(), "String".to_owned()]
            ),
        ]
    );
}
