//! Checks the crate's layering from its `use crate::…` lines: the modules import each other
//! without cycles, `origin/` (the data plane's far end) names nothing of the crate but
//! `bridge`, `metrics` and `Error`, in particular never the connector, which drives it;
//! and `config_watch` (config.yml's hot reload) names only `config`, `origin` and `Error`:
//! it hands new rules to the proxy, and the connector learns of them from there.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// What `origin/` may name of the crate.
const ORIGIN_MAY_NAME: [&str; 3] = ["bridge", "error", "metrics"];
/// What `config_watch` may name of the crate.
const CONFIG_WATCH_MAY_NAME: [&str; 3] = ["config", "error", "origin"];

/// Each top-level module (a `src/*.rs` file, or a folder) and the modules it names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let first = relative.components().next().unwrap();
            let module = Path::new(first.as_os_str())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if ["lib", "main", "layers"].contains(&module.as_str()) {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let named = graph.entry(module.clone()).or_default();
            for name in crate_names(&source) {
                // `crate::Error` is the `error` module's, re-exported at the root.
                let name = if name == "Error" {
                    "error".into()
                } else {
                    name
                };
                if name != module {
                    named.insert(name);
                }
            }
        }
    }
    graph
}

/// The first segment of every path that starts `crate::`, groups (`crate::{a, b::c}`) included.
fn crate_names(source: &str) -> Vec<String> {
    let first_ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (at, _) in source.match_indices("crate::") {
        let rest = &source[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            names.push(first_ident(rest));
            continue;
        };
        let (mut depth, mut start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    names.push(first_ident(&group[start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.push(first_ident(&group[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

#[test]
fn crate_names_reads_paths_and_groups() {
    let source = "use crate::{Error, metrics::X, origin::{a, b}};\nlet c = crate::bridge::f();";
    assert_eq!(
        crate_names(source),
        ["Error", "metrics", "origin", "bridge"]
    );
}

/// What `module` names of the crate beyond `allowed`.
fn stray(module: &str, allowed: &[&str]) -> Vec<String> {
    imports()[module]
        .iter()
        .filter(|n| !allowed.contains(&n.as_str()))
        .cloned()
        .collect()
}

#[test]
fn origin_names_only_bridge_metrics_and_error() {
    let stray = stray("origin", &ORIGIN_MAY_NAME);
    assert!(stray.is_empty(), "origin/ names {stray:?}");
}

#[test]
fn config_watch_names_only_config_origin_and_error() {
    let stray = stray("config_watch", &CONFIG_WATCH_MAY_NAME);
    assert!(stray.is_empty(), "config_watch names {stray:?}");
}

#[test]
fn modules_import_each_other_without_cycles() {
    let graph = imports();
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if done.contains(module) {
            return;
        }
        if let Some(at) = path.iter().position(|m| *m == module) {
            panic!("import cycle: {} -> {module}", path[at..].join(" -> "));
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module);
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.contains_key("origin") && graph.contains_key("connector"));
}
