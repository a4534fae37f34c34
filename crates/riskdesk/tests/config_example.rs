//! `riskdesk.example.toml` cannot drift from the settings riskdesk reads: it is loaded here
//! with the real loader (`src/config.rs`), must give exactly the defaults, and must name every
//! setting — including those of the optional sections, which it lists commented out.

#[path = "../src/config.rs"]
#[allow(dead_code)]
mod config;

use config::Settings;

const EXAMPLE: &str = include_str!("../../../riskdesk.example.toml");

fn load(text: &str) -> Settings {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("riskdesk.toml");
    std::fs::write(&path, text).expect("write");
    Settings::load(&path, None, None).unwrap_or_else(|e| panic!("the loader refused it: {e:#}"))
}

/// The example with every optional setting turned on: `#key = …` and `#[section]` lines
/// lose their `#` (explanations start with `# `).
fn everything_on(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.starts_with('[')
                    || rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every key path of a JSON value (`a.b`, `a.list[].c`).
fn paths(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.push(p.clone());
                paths(v, &p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn has_path(v: &toml::Value, path: &str) -> bool {
    let mut current = vec![v];
    for part in path.split('.') {
        let (key, list) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        let mut next = Vec::new();
        for c in current {
            let Some(x) = c.get(key) else { return false };
            match (list, x) {
                (true, toml::Value::Array(items)) => next.extend(items.iter()),
                (true, _) => return false,
                (false, x) => next.push(x),
            }
        }
        current = next;
    }
    true
}

#[test]
fn the_example_configuration_gives_exactly_the_defaults() {
    let loaded = serde_json::to_value(load(EXAMPLE)).expect("serialise");
    let defaults = serde_json::to_value(Settings::default()).expect("serialise");
    assert_eq!(
        loaded, defaults,
        "riskdesk.example.toml must state the defaults (a setting whose default changed?)"
    );
}

#[test]
fn the_example_configuration_names_every_setting_including_the_optional_ones() {
    let on = everything_on(EXAMPLE);
    let text: toml::Value = toml::from_str(&on).expect("the example with everything on is TOML");
    // Loads (unknown keys would be refused: `deny_unknown_fields` everywhere).
    let all = serde_json::to_value(load(&on)).expect("serialise");
    let defaults = serde_json::to_value(Settings::default()).expect("serialise");
    let mut want = Vec::new();
    paths(&defaults, "", &mut want);
    paths(&all, "", &mut want);
    want.sort();
    want.dedup();
    let missing: Vec<&String> = want.iter().filter(|p| !has_path(&text, p)).collect();
    assert!(
        missing.is_empty(),
        "riskdesk.example.toml does not list these settings: {missing:?}"
    );
    // Every optional section is really in it.
    for section in ["verification", "sms", "email", "partner_center_webhooks"] {
        assert!(!all[section].is_null(), "[{section}] is not in the example");
    }
    assert!(
        all["partner_center"]["global"].is_object(),
        "[partner_center.global] is not in the example"
    );
}

#[test]
fn a_commented_out_setting_is_off_and_an_explanation_stays_a_comment() {
    let on = everything_on("# a = 1 is prose\n#b = 2\n#[c]\n#d = \"x\"\n");
    assert_eq!(on, "# a = 1 is prose\nb = 2\n[c]\nd = \"x\"");
}
