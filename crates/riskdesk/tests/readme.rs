//! The README's promise to a newcomer: its first lines give the command that runs the product
//! and the command that tests it, and CI runs that same test command.

const README: &str = include_str!("../../../README.md");
const CI: &str = include_str!("../../../.ci/run");

const RUN: &str = "cargo run --release -- serve --demo";
const TEST: &str = "cargo test --workspace";

/// The commands of the README's fenced shell blocks within its first `lines` lines.
fn commands_near_the_top(readme: &str, lines: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in readme.lines().take(lines) {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && (t == "```sh" || t == "```bash" || t == "```shell");
            continue;
        }
        if in_sh && !t.is_empty() && !t.starts_with('#') {
            out.push(t.to_owned());
        }
    }
    out
}

/// The commands a shell script runs (comments and `echo` lines aside), `VAR=… cmd` reduced
/// to `cmd`.
fn script_commands(script: &str) -> Vec<String> {
    script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("echo "))
        .map(|l| {
            l.split_whitespace()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn the_readme_gives_the_run_and_test_commands_in_its_first_60_lines() {
    let top = commands_near_the_top(README, 60);
    assert!(
        top.iter().any(|c| c == RUN),
        "the README's first 60 lines must show `{RUN}` in a sh block; they show {top:?}"
    );
    assert!(
        top.iter().any(|c| c == TEST),
        "the README's first 60 lines must show `{TEST}` in a sh block; they show {top:?}"
    );
}

#[test]
fn ci_runs_the_readmes_test_command() {
    assert!(
        script_commands(CI).iter().any(|c| c == TEST),
        ".ci/run must run `{TEST}` (the README's test command) as a command of its own"
    );
}

#[test]
fn the_checks_see_through_comments_and_environment_prefixes() {
    let readme = "# t\n```sh\n# cargo test --workspace\ncargo run\n```\ncargo test --workspace\n";
    assert_eq!(commands_near_the_top(readme, 60), vec!["cargo run"]);
    let ci =
        "# cargo test --workspace\necho cargo test --workspace\nA=1 B=2 cargo test --workspace\n";
    assert_eq!(script_commands(ci), vec!["cargo test --workspace"]);
    assert!(
        script_commands("cargo test -p x\n")
            .iter()
            .all(|c| c != TEST)
    );
}
