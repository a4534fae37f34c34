//! The dependency rule of riskdesk-app, checked on its source: a module may use modules of a
//! lower layer and itself, never a module above it or beside it.
//!
//! | layer | modules |
//! |---|---|
//! | 0 | kernel |
//! | 1 | accounts, audit (side by side) |
//! | 2 | alerts |
//! | 3 | onboarding, monitoring, billing (side by side: none names another) |
//! | 4 | response |
//! | 5 | provider |
//! | top | wiring, workers, demo, the crate root (lib.rs) |
//!
//! A capability that must make another react goes through `kernel::Event` or
//! `kernel::Approvals`, answered in `wiring`. Also checked: no crate but riskdesk-http names
//! the HTTP crate's `routes` module, and riskdesk-app's manifest names no HTTP crate.

use std::path::{Path, PathBuf};

/// The layer of a top-level module of the crate (`None`: not a module of the rule).
fn layer(module: &str) -> Option<u8> {
    Some(match module {
        "kernel" => 0,
        "accounts" | "audit" => 1,
        "alerts" => 2,
        "onboarding" | "monitoring" | "billing" => 3,
        "response" => 4,
        "provider" => 5,
        "wiring" | "workers" | "demo" | "lib" => 9,
        _ => return None,
    })
}

/// The top-level module a source file belongs to (`src/monitoring/detect.rs` → monitoring).
fn module_of(rel: &Path) -> String {
    let mut parts = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let first = parts.next().unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Is `rel` a module's own root file (`lib.rs`, `x.rs` at the top, `x/mod.rs`)? Its `super` is
/// the crate root; in any other file `super` is the module itself (one level down).
fn is_module_root(rel: &Path) -> bool {
    let n = rel.components().count();
    n == 1 || (n == 2 && rel.file_name().is_some_and(|f| f == "mod.rs"))
}

/// The text without line comments and without `#[cfg(test)]` items (unit tests may reach
/// anywhere: they are not part of the product's dependency graph).
fn code_only(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut pending_cfg_test = false;
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        if let Some(depth) = skip_depth.as_mut() {
            *depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            if *depth <= 0 && code.contains('}') {
                skip_depth = None;
            }
            out.push('\n');
            continue;
        }
        if code.trim() == "#[cfg(test)]" {
            pending_cfg_test = true;
            out.push('\n');
            continue;
        }
        if pending_cfg_test {
            pending_cfg_test = false;
            let opens = code.matches('{').count() as i32 - code.matches('}').count() as i32;
            if opens > 0 {
                skip_depth = Some(opens);
            }
            out.push('\n');
            continue;
        }
        out.push_str(code);
        out.push('\n');
    }
    out
}

/// The top-level modules named by each path in the code, with their line numbers: `crate::x`,
/// `crate::{x, y::z}` and `super::x` (resolved against the file's place).
fn references(rel: &Path, code: &str) -> Vec<(usize, String)> {
    let own = module_of(rel);
    let mut refs = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find("crate::").or_else(|| rest.find("super::")) {
            let is_super = rest[i..].starts_with("super::");
            let after = &rest[i + 7..];
            if is_super && !is_module_root(rel) {
                // `super::` inside a module's sub-file is the module itself.
                refs.push((n + 1, own.clone()));
            } else if let Some(group) = after.strip_prefix('{') {
                // `crate::{a, b::{c, d}}`: the first name of every top-level item.
                let mut depth = 0;
                let mut item = String::new();
                for ch in group.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            refs.push((n + 1, first_name(&item)));
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(ch);
                }
                if !item.trim().is_empty() {
                    refs.push((n + 1, first_name(&item)));
                }
            } else {
                refs.push((n + 1, first_name(after)));
            }
            rest = &rest[i + 7..];
        }
    }
    refs
}

fn first_name(path: &str) -> String {
    let name: String = path
        .trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // `crate::App`, `crate::AppError`: items of the crate root.
    if name.chars().next().is_some_and(|c| c.is_uppercase()) {
        "lib".to_owned()
    } else {
        name
    }
}

/// Every edge the rule forbids, as `file:line: from → to`.
fn violations(files: &[(PathBuf, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (rel, text) in files {
        let from = module_of(rel);
        let Some(from_layer) = layer(&from) else {
            bad.push(format!("{}: module '{from}' has no layer", rel.display()));
            continue;
        };
        for (line, to) in references(rel, &code_only(text)) {
            if to == from || to == "self" || to.is_empty() {
                continue;
            }
            let Some(to_layer) = layer(&to) else { continue };
            if to_layer >= from_layer && from_layer != 9 {
                bad.push(format!(
                    "src/{}:{line}: {from} (layer {from_layer}) uses {to} (layer {to_layer})",
                    rel.display()
                ));
            }
        }
    }
    bad
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).expect("read the source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.push((
                path.strip_prefix(root).expect("under src").to_path_buf(),
                text,
            ));
        }
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_module_of_the_application_uses_one_above_or_beside_it() {
    let src = manifest_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let bad = violations(&files);
    assert!(
        bad.is_empty(),
        "edges the layering rule forbids:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_rule_catches_upward_and_sideways_edges_and_allows_downward_ones() {
    let files = vec![
        (
            PathBuf::from("billing/mod.rs"),
            "use crate::kernel::Uow;\nuse crate::accounts;\n\
             fn f() { crate::response::propose(); }\nuse crate::{alerts, monitoring::x};\n"
                .to_owned(),
        ),
        (
            PathBuf::from("monitoring/spend.rs"),
            "use super::detect;\n// crate::response::not_code()\n".to_owned(),
        ),
        (
            PathBuf::from("accounts/mod.rs"),
            "use super::App;\n#[cfg(test)]\nmod tests {\n    use crate::wiring;\n}\n".to_owned(),
        ),
        (
            PathBuf::from("wiring.rs"),
            "use crate::{response, monitoring};\n".to_owned(),
        ),
    ];
    let bad = violations(&files);
    assert_eq!(
        bad,
        vec![
            "src/billing/mod.rs:3: billing (layer 3) uses response (layer 4)",
            "src/billing/mod.rs:4: billing (layer 3) uses monitoring (layer 3)",
            "src/accounts/mod.rs:1: accounts (layer 1) uses lib (layer 9)",
        ]
    );
}

#[test]
fn only_riskdesk_http_names_its_routes_and_the_application_names_no_http_crate() {
    let crates = manifest_dir().join("..");
    let mut files = Vec::new();
    for c in ["riskdesk", "app"] {
        let dir = crates.join(c);
        rust_files(&dir, &dir, &mut files);
    }
    let routes = concat!("riskdesk_http", "::routes");
    let leaks: Vec<String> = files
        .iter()
        .filter(|(_, t)| t.contains(routes))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(
        leaks.is_empty(),
        "{routes} named outside riskdesk-http: {leaks:?}"
    );

    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).expect("Cargo.toml");
    for http in ["axum", "tower", "tower-http", "hyper", "utoipa-axum"] {
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{http} "))
                    || l.trim_start().starts_with(&format!("{http}."))),
            "riskdesk-app's Cargo.toml names {http}"
        );
    }
    let utoipa = manifest
        .lines()
        .find(|l| l.starts_with("utoipa"))
        .expect("utoipa is an optional dependency");
    assert!(
        utoipa.contains("optional = true"),
        "utoipa must stay optional: {utoipa}"
    );
}
