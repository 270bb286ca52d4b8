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
