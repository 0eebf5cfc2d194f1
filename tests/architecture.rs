//! The code map's rules, checked on the source: the file-level module graph of the root crate
//! (every `crate::…` / `super::…` path outside tests and comments) has no cycle, and job memory
//! is read through the typed layer (`memory::Memory`, `SectionDoc`), never by digging in a
//! section's JSON (`content["…"]`, `.pointer("…")`) outside `src/memory/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without its test modules and comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// `src/a/b.rs` → ["a", "b"]; `src/a/mod.rs` → ["a"]; `src/lib.rs` → [].
fn module_of(src: &Path, path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// Every path expression starting at `crate::` or `super::`, with `{a, b::c}` groups expanded.
fn paths_in(code: &str) -> Vec<(bool, Vec<String>)> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let mut segs = Vec::new();
            let mut j = from;
            loop {
                let ident: String = code[j..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if ident.is_empty() {
                    break;
                }
                j += ident.len();
                segs.push(ident);
                if code[j..].starts_with("::") {
                    j += 2;
                } else {
                    break;
                }
            }
            let is_super = start == "super::";
            if code[j..].starts_with('{') {
                let close = code[j..].find('}').map_or(code.len(), |c| j + c);
                for item in code[j + 1..close].split(',') {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    if !item.is_empty() {
                        let mut p = segs.clone();
                        p.extend(item.split("::").map(|s| s.trim().to_owned()));
                        out.push((is_super, p));
                    }
                }
            }
            out.push((is_super, segs));
        }
    }
    out
}

fn find_cycle(edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Option<Vec<Vec<String>>> {
    // Depth-first search with colours; returns the first cycle found.
    fn visit(
        node: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        colour: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        colour.insert(node.clone(), 1);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            match colour.get(next).copied().unwrap_or(0) {
                1 => {
                    let i = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle = stack[i..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, edges, colour, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        colour.insert(node.clone(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for node in edges.keys() {
        if colour.get(node).copied().unwrap_or(0) == 0
            && let Some(c) = visit(node, edges, &mut colour, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> = files.iter().map(|f| (module_of(&src, f), f.clone())).collect();
    let resolve = |path: &[String]| -> Option<Vec<String>> {
        (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p))
    };
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        for (is_super, path) in paths_in(&code_of(file)) {
            // `super` of `a/b.rs` and of `a/b/mod.rs` is `a` alike.
            let mut target = if is_super { module[..module.len().saturating_sub(1)].to_vec() } else { Vec::new() };
            target.extend(path);
            if let Some(t) = resolve(&target)
                && !t.is_empty()
                && t != *module
            {
                edges.entry(module.clone()).or_default().insert(t);
            }
        }
    }
    assert!(edges.len() > 20, "the scan found too few imports to mean anything: {}", edges.len());
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!("module cycle: {}", names.join(" → "));
    }
}

#[test]
fn memory_is_read_through_the_typed_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(src.join("memory"))) {
        for (n, line) in code_of(file).lines().enumerate() {
            if line.contains("content[\"") || line.contains("content.pointer(") || line.contains("content.get(\"") {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "memory read around the typed layer:\n{}", offenders.join("\n"));
}
