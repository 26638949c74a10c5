//! No import circle among the files of any module of the library.
//!
//! A module's files should read in one direction: if `a.rs` uses
//! `b.rs`, then `b.rs` does not use `a.rs`, directly or through others.
//! This reads every file under `src/`, takes the paths it names (in `use`
//! trees and inline, outside comments and `#[cfg(test)] mod tests`),
//! resolves each to the file that defines it (a name a module's root
//! re-exports resolves to the file it comes from), and looks for a cycle
//! among the files of each directory module. The module's root (`mod.rs`)
//! is left out: it declares its children and re-exports them, so it sits
//! above them by construction.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

struct File {
    text: String,
    /// `mod.rs` or `lib.rs`: the root of a directory module.
    root: bool,
}

fn collect(dir: &Path, prefix: &[String], out: &mut BTreeMap<ModPath, File>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.is_dir() {
            let mut inner = prefix.to_vec();
            inner.push(name);
            collect(&path, &inner, out);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            let root = matches!(stem, "mod" | "lib" | "main");
            let mut module = prefix.to_vec();
            if !root {
                module.push(stem.to_owned());
            }
            let text = fs::read_to_string(&path).unwrap_or_default();
            out.insert(
                module,
                File {
                    text: code_only(&text),
                    root,
                },
            );
        }
    }
}

/// The text without comments and without a trailing `#[cfg(test)] mod tests`.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    let mut code: String = out
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(at) = code.find("#[cfg(test)]\nmod tests") {
        code.truncate(at);
    }
    code
}

/// Every path of a `use` tree, flattened: `a::{b, c::{d}}` gives `a::b`, `a::c::d`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        for item in tree.split(',') {
            // `~` stands for ` as `: what follows is a local name.
            let item = item.split('~').next().unwrap_or_default().trim();
            if !item.is_empty() {
                out.push(format!("{prefix}{item}"));
            }
        }
        return;
    };
    let head = &tree[..open];
    let (mut depth, mut item) = (0, String::new());
    for ch in tree[open + 1..].chars() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                expand(&format!("{prefix}{head}"), &std::mem::take(&mut item), out);
                continue;
            }
            _ => {}
        }
        item.push(ch);
    }
    expand(&format!("{prefix}{head}"), &item, out);
}

fn paths_named(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for statement in code.split(';') {
        let flat = format!(
            " {}",
            statement.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        if let Some(at) = flat.find(" use ") {
            let tree = flat[at + 5..].replace(" as ", "~").replace(' ', "");
            expand("", &tree, &mut paths);
        }
    }
    // Inline paths, such as `super::writer::State` in a signature.
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(start) {
            let at = from + found;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |n| at + n);
            paths.push(code[at..end].trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// The file a path names from `module`, if it is a file of this crate.
fn resolve(
    module: &ModPath,
    path: &str,
    files: &BTreeMap<ModPath, File>,
    reexports: &BTreeMap<ModPath, ModPath>,
) -> Option<ModPath> {
    let mut segments: Vec<&str> = path.split("::").collect();
    let mut target: ModPath = match segments.first().copied() {
        Some("crate") => {
            segments.remove(0);
            Vec::new()
        }
        Some("self") => {
            segments.remove(0);
            module.clone()
        }
        Some("super") => {
            let mut base = module.clone();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            base
        }
        _ => return None,
    };
    target.extend(segments.iter().map(|s| (*s).to_owned()));
    (1..=target.len()).rev().find_map(|n| {
        let prefix = target[..n].to_vec();
        reexports
            .get(&prefix)
            .cloned()
            .or_else(|| files.contains_key(&prefix).then_some(prefix))
    })
}

/// A cycle in `graph`, as the files along it, if there is one.
fn find_cycle(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Option<Vec<ModPath>> {
    fn visit(
        node: &ModPath,
        graph: &BTreeMap<ModPath, BTreeSet<ModPath>>,
        state: &mut BTreeMap<ModPath, u8>,
        stack: &mut Vec<ModPath>,
    ) -> Option<Vec<ModPath>> {
        state.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    return Some(stack[from..].to_vec());
                }
                0 => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph.keys().find_map(|node| {
        if state.contains_key(node) {
            return None;
        }
        visit(node, graph, &mut state, &mut Vec::new())
    })
}

#[test]
fn no_module_has_an_import_circle_among_its_files() {
    // Another tree can be checked by naming its `src` (for instance an
    // older commit's, to see the check find its circles).
    let src = std::env::var_os("IMPORT_GRAPH_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        PathBuf::from,
    );
    let mut files = BTreeMap::new();
    collect(&src, &[], &mut files);
    assert!(files.len() > 10, "no sources found under {}", src.display());
    let mut reexports = BTreeMap::new();
    for (module, file) in files.iter().filter(|(_, f)| f.root) {
        for path in paths_named(&file.text) {
            let mut segments = path.split("::");
            let (Some(child), Some(name)) = (segments.next(), segments.last()) else {
                continue;
            };
            let mut child_path = module.clone();
            child_path.push(child.to_owned());
            if files.contains_key(&child_path) {
                let mut named = module.clone();
                named.push(name.to_owned());
                reexports.insert(named, child_path);
            }
        }
    }
    let mut circles = Vec::new();
    let parents: BTreeSet<ModPath> = files
        .iter()
        .filter(|(_, f)| !f.root)
        .map(|(m, _)| m[..m.len() - 1].to_vec())
        .collect();
    for parent in parents {
        let members: BTreeSet<ModPath> = files
            .iter()
            .filter(|(m, f)| !f.root && m.len() == parent.len() + 1 && m.starts_with(&parent))
            .map(|(m, _)| m.clone())
            .collect();
        let graph: BTreeMap<ModPath, BTreeSet<ModPath>> = members
            .iter()
            .map(|m| {
                let edges = paths_named(&files[m].text)
                    .iter()
                    .filter_map(|p| resolve(m, p, &files, &reexports))
                    .filter(|t| t != m && members.contains(t))
                    .collect();
                (m.clone(), edges)
            })
            .collect();
        if let Some(cycle) = find_cycle(&graph) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("/") + ".rs").collect();
            circles.push(names.join(" -> "));
        }
    }
    assert!(
        circles.is_empty(),
        "import circles among a module's files (each file should use the next, and the last the first):\n{}",
        circles.join("\n")
    );
}
