//! The project stands on its own: its rules are written where its code is (the model's module
//! documentation, README), so no file of it refers to a design document kept elsewhere.

use std::path::Path;

/// Every text file the repository tracks, but the vendored assets.
fn tracked_text_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git runs");
    assert!(listed.status.success(), "git ls-files");
    listed
        .stdout
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| root.join(String::from_utf8_lossy(name).as_ref()))
        .filter(|path| !path.starts_with(root.join("assets")))
        .collect()
}

#[test]
fn no_file_cites_a_document_outside_the_repository() {
    // Spelled in two halves so that this file does not name them itself.
    let outside = [["DESIGN", ".md"].concat(), ["../", "shared"].concat()];
    let mut citing = Vec::new();
    for path in tracked_text_files() {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for name in &outside {
            if text.contains(name.as_str()) {
                citing.push(format!("{} cites {name}", path.display()));
            }
        }
    }
    assert!(citing.is_empty(), "{citing:#?}");
}
