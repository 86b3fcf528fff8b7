//! The layer rules, checked: every `crate::` path in `src/` must go from a layer to one it
//! may use, and the layers and root modules must not use each other in a circle. Each
//! folder's `mod.rs` states its rule in one line; [`RULES`] is the same, as data.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Root modules every layer may use; they use only each other.
const GROUND: &[&str] = &["error", "clock", "files", "net"];

/// Root modules that wire the process (and this checker): they may use anything, and
/// nothing below them may use them.
const TOP: &[&str] = &["lib", "main", "app", "config", "admin", "health", "layers"];

/// Each layer (a folder of `src/`) and the layers it may use besides the ground.
const RULES: &[(&str, &[&str])] = &[
    ("storage", &[]),
    ("observe", &[]),
    ("trust", &[]),
    ("tunnel", &["storage", "observe"]),
    ("edge", &["tunnel", "observe"]),
    ("identity", &["storage", "trust"]),
    (
        "control",
        &["storage", "observe", "trust", "tunnel", "identity"],
    ),
    (
        "web",
        &[
            "storage", "observe", "trust", "tunnel", "edge", "identity", "control",
        ],
    ),
];

/// Outside crates a layer must not name.
const FORBIDDEN_CRATES: &[(&str, &[&str])] = &[
    ("edge", &["axum", "sqlx", "tonic"]),
    (
        "control",
        &["axum", "http", "http_body", "hyper", "tonic", "tower"],
    ),
    ("identity", &["axum", "hyper", "tonic"]),
    ("storage", &["axum", "http", "hyper", "tonic"]),
];

/// Names the crate root re-exports, and the module each comes from.
const ROOT_ITEMS: &[(&str, &str)] = &[("Error", "error"), ("Config", "config"), ("App", "app")];

/// The unit a file belongs to: its folder under `src/`, or its own name at the root.
fn unit_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// The source without comments (line comments, doc comments, block comments) and
/// without the insides of string literals, so prose never counts as a path.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            'r' if matches!(chars.peek(), Some('#' | '"'))
                && !out.ends_with(|c: char| c.is_alphanumeric() || c == '_') =>
            {
                let mut hashes = 0;
                while chars.next_if_eq(&'#').is_some() {
                    hashes += 1;
                }
                if chars.next_if_eq(&'"').is_none() {
                    // `r#ident`, a raw identifier.
                    out.push('r');
                    continue;
                }
                let mut closing = None;
                for c in chars.by_ref() {
                    closing = match (c, closing) {
                        ('"', _) => Some(0),
                        ('#', Some(n)) => Some(n + 1),
                        _ => None,
                    };
                    if closing == Some(hashes) {
                        break;
                    }
                }
                out.push_str("\"\"");
            }
            '"' => {
                let mut escaped = false;
                for c in chars.by_ref() {
                    if c == '"' && !escaped {
                        break;
                    }
                    escaped = c == '\\' && !escaped;
                }
                out.push_str("\"\"");
            }
            // A char literal holding a quote would open a string above.
            '\'' if chars.peek() == Some(&'"') => {
                chars.next();
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first segment of every `crate::` path: `crate::a::b` gives `a`,
/// `crate::{a::b, c}` gives `a` and `c`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.push(ident(&group[i..]).to_owned());
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest).to_owned());
        }
    }
    found
}

/// The outside crates a file names in paths (`axum::…`, `use axum`).
fn names_crate(code: &str, krate: &str) -> bool {
    code.match_indices(krate).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = &code[at + krate.len()..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            && (after.starts_with("::") || after.starts_with(';'))
    })
}

fn rust_files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("a readable entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// `unit → units it uses`, with the files and paths that make each edge.
type Uses = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn read_uses() -> (Uses, Vec<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut uses = Uses::new();
    let mut faults = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/").to_path_buf();
        let unit = unit_of(&relative);
        if unit == "layers" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).expect("a readable file"));
        let shown = relative.display().to_string();
        let edges = uses.entry(unit.clone()).or_default();
        for first in crate_paths(&code) {
            let target = ROOT_ITEMS
                .iter()
                .find(|(name, _)| *name == first)
                .map_or(first.clone(), |(_, module)| (*module).to_owned());
            if target != unit {
                edges.entry(target).or_default().insert(shown.clone());
            }
        }
        if let Some((_, crates)) = FORBIDDEN_CRATES.iter().find(|(layer, _)| *layer == unit) {
            for krate in *crates {
                if names_crate(&code, krate) {
                    faults.push(format!("{shown} names `{krate}`, which {unit}/ must not"));
                }
            }
        }
    }
    (uses, faults)
}

fn allowed(from: &str, to: &str) -> Result<bool, String> {
    if TOP.contains(&from) {
        return Ok(true);
    }
    if TOP.contains(&to) {
        return Ok(false);
    }
    if GROUND.contains(&to) {
        return Ok(true);
    }
    if GROUND.contains(&from) {
        return Ok(false);
    }
    let (_, may) = RULES
        .iter()
        .find(|(layer, _)| *layer == from)
        .ok_or_else(|| format!("{from} has no rule: add it to RULES, GROUND or TOP"))?;
    Ok(may.contains(&to))
}

/// The first circle found among `edges`, as the units on it.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, done, path) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut done, &mut Vec::new()))
}

#[test]
fn every_layer_uses_only_what_its_rule_allows() {
    let (uses, mut faults) = read_uses();
    for (from, targets) in &uses {
        for (to, files) in targets {
            match allowed(from, to) {
                Ok(true) => {}
                Ok(false) => faults.push(format!(
                    "{from} must not use {to}: {}",
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                )),
                Err(unknown) => faults.push(unknown),
            }
        }
    }
    assert!(
        faults.is_empty(),
        "layer rules broken:\n{}",
        faults.join("\n")
    );
}

#[test]
fn no_circles_between_layers_or_root_modules() {
    let (uses, _) = read_uses();
    let edges: BTreeMap<String, BTreeSet<String>> = uses
        .iter()
        .map(|(from, targets)| (from.clone(), targets.keys().cloned().collect()))
        .collect();
    if let Some(circle) = find_cycle(&edges) {
        panic!("a circle of uses: {}", circle.join(" → "));
    }
    let rules: BTreeMap<String, BTreeSet<String>> = RULES
        .iter()
        .map(|(layer, may)| {
            (
                (*layer).to_owned(),
                may.iter().map(|m| (*m).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(find_cycle(&rules), None, "RULES itself has a circle");
}

#[test]
fn every_layer_states_its_rule_in_its_mod_rs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (layer, _) in RULES {
        let doc = std::fs::read_to_string(src.join(layer).join("mod.rs")).expect("a mod.rs");
        assert!(
            doc.lines()
                .take_while(|line| line.starts_with("//!"))
                .any(|line| line.starts_with(&format!("//! Rule: {layer}/"))),
            "{layer}/mod.rs states no rule (a `//! Rule: {layer}/ …` line in its doc)"
        );
    }
}

#[test]
fn the_reader_finds_paths_and_ignores_prose() {
    let code = code_only(
        "use crate::{Error, edge::{self, Edge}, tunnel::registry::Registry};\n\
         // crate::web in a comment\n\
         let s = \"crate::control\"; let r = r#\"\"crate::web\"\"#; let x = crate::clock::now_ms(); pub(crate) fn f() {}",
    );
    assert_eq!(crate_paths(&code), ["Error", "edge", "tunnel", "clock"]);
    assert!(names_crate("use axum::Router;", "axum"));
    assert!(!names_crate("let axum_like = 1; tokio::axum", "axum"));
}
