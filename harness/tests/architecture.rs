//! The layers of the crate and which way they depend (README, "Architecture"), checked from
//! the source: every `crate::…` path outside `#[cfg(test)]` code is an edge between two
//! top-level modules. `cargo test --test architecture -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Allowed dependencies of each top-level module (besides itself). A module missing here
/// fails the test: a new module must be placed in a layer.
const LAYERS: &[(&str, &[&str])] = &[
    // leaves
    ("model", &[]),
    ("util", &[]),
    ("redact", &["util"]),
    ("exit", &[]),
    ("tlswire", &[]),
    // the certificate a TLS service presents: fetched (rustls) and judged
    ("tlscert", &["util"]),
    // user files
    ("config", &["model", "util", "tlscert"]),
    // running a command (setup, power, factory reset)
    ("process", &["model", "util", "config"]),
    // the device's interfaces and the benches
    ("bench", &["model", "util", "config", "tlswire"]),
    ("console", &["model", "util", "redact", "config"]),
    ("power", &["model", "util", "config", "process"]),
    ("debug", &["model", "util", "config"]),
    ("update", &["model", "util", "config", "bench"]),
    // the bench answers every flow on the device's link with the bench's PKI (issue 25)
    ("gateway", &["model", "util", "tlswire", "bench"]),
    ("remote", &["model", "util", "config", "bench", "console", "tlscert"]),
    ("docs", &["model", "util", "config"]),
    ("lab", &["model", "util", "config"]),
    // results: only the leaf model and the event stream (its own)
    ("report", &["model", "util"]),
    // checks
    (
        "engine",
        &[
            "model", "util", "redact", "tlswire", "tlscert", "config", "process", "bench", "console", "power", "debug",
            "update", "gateway", "remote", "docs", "report",
        ],
    ),
    // one run
    (
        "run",
        &[
            "model", "util", "redact", "tlswire", "exit", "config", "process", "bench", "console", "power", "debug",
            "update", "gateway", "remote", "docs", "lab", "engine", "report",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read src") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments, string and char literals (so a `crate::` in a doc or a
/// message is no edge).
fn code_only(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#')) && (i == 0 || !is_ident(b[i - 1])) => {
                let mut j = i + 1;
                let mut hashes = 0;
                while b.get(j) == Some(&b'#') {
                    hashes += 1;
                    j += 1;
                }
                if b.get(j) != Some(&b'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= b.len() {
                        break;
                    }
                    if b[j] == b'"' && b[j + 1..].iter().take(hashes).filter(|&&c| c == b'#').count() == hashes {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            b'\'' => {
                // a char literal ('x', '\n', '\u{..}'); a lifetime ('a) is kept
                let end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..].iter().position(|&c| c == b'\'').map(|p| i + 2 + p)
                } else if b.get(i + 2) == Some(&b'\'') {
                    Some(i + 2)
                } else {
                    None
                };
                match end {
                    Some(e) => {
                        out.push_str("' '");
                        i = e + 1;
                    }
                    None => {
                        out.push('\'');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Removes `#[cfg(test)]` items (test modules and test-only functions).
fn without_tests(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        // the item ends at its matching `}` (or at `;` for a `use`/`mod x;`)
        let b = after.as_bytes();
        let mut i = "#[cfg(test)]".len();
        let mut depth = 0;
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    i += 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        rest = &after[i.min(after.len())..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a file's code names through `crate::`.
fn uses(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(p) = code[from..].find("crate::") {
        let start = from + p;
        from = start + 7;
        if start > 0 && (is_ident(b[start - 1]) || b[start - 1] == b'$') {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e}}`: the first segment of each top-level entry
            let mut depth = 0;
            let mut entry = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(first_segment(&entry));
                        entry.clear();
                        continue;
                    }
                    _ => {}
                }
                entry.push(c);
            }
            found.insert(first_segment(&entry));
        } else {
            found.insert(first_segment(rest));
        }
    }
    found.remove("");
    found.remove("self");
    found
}

fn first_segment(s: &str) -> String {
    s.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).expect("under src");
        let top = rel
            .components()
            .next()
            .expect("a component")
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        let mut deps = uses(&without_tests(&code_only(&text)));
        deps.remove(&top);
        g.entry(top).or_default().extend(deps);
    }
    g
}

#[test]
fn the_source_scanner_sees_paths_groups_and_skips_comments_strings_and_tests() {
    let code = r##"
        use crate::config::yaml::{Loc, Pos};
        use crate::{bench, report::events::Verdict};
        // crate::engine is only a comment
        let s = "crate::run in a string"; let r = r#"crate::lab "quoted" raw"#; let c = '"';
        fn f<'a>(x: &'a str) -> crate::util::Hex { crate::model::Pos::default() }
        #[cfg(test)]
        mod tests { use crate::power::Power; }
    "##;
    let u = uses(&without_tests(&code_only(code)));
    let got: Vec<&str> = u.iter().map(String::as_str).collect();
    assert_eq!(got, ["bench", "config", "model", "report", "util"]);
}

/// Every dependency not below its module, and every import circle.
fn violations(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (m, deps) in g {
        match allowed.get(m.as_str()) {
            None => wrong.push(format!("{m}: not placed in a layer (add it to LAYERS)")),
            Some(ok) => {
                for d in deps {
                    if !ok.contains(&d.as_str()) {
                        wrong.push(format!("{m} imports {d}, which is not below it"));
                    }
                }
            }
        }
    }
    // a circle is also reported on its own, whatever LAYERS says
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
        cycles: &mut Vec<String>,
    ) {
        match state.get(m) {
            Some(2) => return,
            Some(_) => {
                let from = path.iter().position(|p| *p == m).unwrap_or(0);
                cycles.push(format!("{} -> {m}", path[from..].join(" -> ")));
                return;
            }
            None => {}
        }
        state.insert(m, 1);
        path.push(m);
        for d in g.get(m).into_iter().flatten() {
            visit(d, g, state, path, cycles);
        }
        path.pop();
        state.insert(m, 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = Vec::new();
    for m in g.keys() {
        visit(m, g, &mut state, &mut Vec::new(), &mut cycles);
    }
    wrong.extend(cycles.into_iter().map(|c| format!("import circle: {c}")));
    wrong
}

#[test]
fn modules_depend_only_on_their_lower_layers_and_never_in_a_circle() {
    let g = graph();
    println!("module dependencies (non-test code):");
    for (m, deps) in &g {
        println!("  {m} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    let wrong = violations(&g);
    assert!(wrong.is_empty(), "layering broken:\n  {}", wrong.join("\n  "));
}

#[test]
fn a_broken_layer_and_a_circle_are_reported() {
    let mut g = graph();
    g.entry("config".into()).or_default().insert("engine".into());
    g.entry("novel".into()).or_default();
    let wrong = violations(&g);
    assert!(
        wrong.contains(&"config imports engine, which is not below it".to_string()),
        "{wrong:?}"
    );
    assert!(
        wrong.contains(&"novel: not placed in a layer (add it to LAYERS)".to_string()),
        "{wrong:?}"
    );
    assert!(
        wrong
            .iter()
            .any(|w| w.starts_with("import circle:") && w.contains("config -> engine")),
        "{wrong:?}"
    );
}
