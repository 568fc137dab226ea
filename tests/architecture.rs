//! The module layering written in `src/lib.rs` holds in the code: every
//! `crate::` path in a module names a module of a lower row, and the files
//! of one directory module (`diagnose/`, `notify/`, …) import each other
//! without cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The rows of the ```text block under "# Layers" in lib.rs, top first.
fn layers() -> Vec<Vec<String>> {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let start = lib.find("# Layers").expect("lib.rs has a Layers section");
    let block = &lib[start..];
    let open = block.find("```text").expect("a ```text block") + "```text".len();
    let close = open + block[open..].find("```").expect("a closing ```");
    block[open..close]
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // Module names come first, then two or more spaces and a note.
            let names = l.split("  ").next().unwrap_or("");
            names.split_whitespace().map(String::from).collect()
        })
        .collect()
}

/// The top-level module a file belongs to (`src/notify/slack.rs` → `notify`).
fn top_module(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Every `crate::a::b` path in the code (comments included: a doc link that
/// points up is as misleading as an import).
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let parts: Vec<String> = path
            .split("::")
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect();
        if !parts.is_empty() {
            out.push(parts);
        }
    }
    out
}

#[test]
fn every_module_imports_only_from_lower_layers() {
    let layers = layers();
    let mut row: BTreeMap<String, usize> = BTreeMap::new();
    for (i, names) in layers.iter().enumerate() {
        for n in names {
            assert!(row.insert(n.clone(), i).is_none(), "{n} is in two rows");
        }
    }
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    let declared: BTreeSet<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let drawn: BTreeSet<String> = row.keys().cloned().collect();
    assert_eq!(
        declared, drawn,
        "lib.rs declares exactly the modules its diagram draws"
    );

    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let Some(from) = top_module(f) else { continue };
        let text = fs::read_to_string(f).unwrap();
        for path in crate_paths(&text) {
            let to = &path[0];
            if *to == from || !row.contains_key(to) {
                continue;
            }
            if row[to] <= row[&from] {
                wrong.push(format!(
                    "{}: crate::{} ({from} may only use rows below its own)",
                    f.strip_prefix(src()).unwrap().display(),
                    path.join("::")
                ));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// Sibling files of one directory module, and which siblings each uses
/// (`super::x`, `crate::dir::x`).
fn sibling_graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let dir_name = dir.file_name().unwrap().to_str().unwrap().to_string();
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let name_of = |f: &Path| -> String {
        let rel = f.strip_prefix(dir).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        first.strip_suffix(".rs").unwrap_or(first).to_string()
    };
    let names: BTreeSet<String> = files.iter().map(|f| name_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = name_of(f);
        if me == "mod" {
            continue;
        }
        let text = fs::read_to_string(f).unwrap();
        let entry = graph.entry(me.clone()).or_default();
        let mut mention = |s: &str| {
            let s: String = s
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if s != me && names.contains(&s) && s != "mod" {
                entry.insert(s);
            }
        };
        // A nested file (`dir/me/x.rs`) reaches its siblings through `super::super::`.
        let nested = f.parent() != Some(dir);
        for (i, _) in text.match_indices("super::") {
            let after = &text[i + "super::".len()..];
            if nested {
                if let Some(rest) = after.strip_prefix("super::") {
                    mention(rest);
                }
            } else {
                mention(after);
            }
        }
        let own = format!("crate::{dir_name}::");
        for (i, _) in text.match_indices(&own) {
            mention(&text[i + own.len()..]);
        }
    }
    graph
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

/// Every directory module under `dir`, nested ones (`kube/config/`) included.
fn directory_modules(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.push(p.clone());
            directory_modules(&p, out);
        }
    }
}

#[test]
fn the_files_of_each_directory_module_import_each_other_without_cycles() {
    let mut dirs = Vec::new();
    directory_modules(&src(), &mut dirs);
    for dir in &dirs {
        let graph = sibling_graph(dir);
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "import cycle in src/{}/: {}",
                dir.strip_prefix(src()).unwrap().display(),
                cycle.join(" → ")
            );
        }
    }
    assert!(
        dirs.len() >= 5,
        "found only {} directory modules",
        dirs.len()
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("rules".into()).or_default().insert("vars".into());
    g.entry("vars".into()).or_default().insert("context".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("vars".into()).or_default().insert("rules".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["rules".into(), "vars".into(), "rules".into()])
    );
}
