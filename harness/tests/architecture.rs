//! The layers of the crate and which way they depend (README, "Architecture"), checked on
//! the source as the compiler reads it: every file is parsed (`syn`), every path outside
//! `#[cfg(test)]` code — in `use` trees, types, expressions, patterns and macro arguments —
//! is resolved from the module it is written in (`crate::`, `super::` as often as it is
//! written, `self::`, a child module's name) to the file that defines the module it names.
//! Two graphs are checked: the top-level modules against LAYERS, and every file against
//! every other for circles (inside a folder too).
//! `cargo test --test architecture -- --nocapture` prints both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

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
    ("config", &["model", "util", "tlscert", "vuln"]),
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
    // what the firmware ships and what is known about it: bytes and text in, findings out
    ("vuln", &["model", "util"]),
    // results: only the leaf model and the event stream (its own)
    ("report", &["model", "util"]),
    // checks
    (
        "engine",
        &[
            "model", "util", "redact", "tlswire", "tlscert", "config", "process", "bench", "console", "power", "debug",
            "update", "gateway", "remote", "docs", "report", "vuln",
        ],
    ),
    // one run
    (
        "run",
        &[
            "model", "util", "redact", "tlswire", "exit", "config", "process", "bench", "console", "power", "debug",
            "update", "gateway", "remote", "docs", "lab", "engine", "report", "vuln",
        ],
    ),
];

/// File-level circles that exist today, each as its files in order (module paths): none since
/// the engine's was broken (issue 27); a circle not listed here fails the test, and so does an
/// entry that is no longer a circle (the list only shrinks).
const KNOWN_FILE_CIRCLES: &[&[&str]] = &[];

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

/// A module path: `["engine", "steps", "remote"]`; the crate root is empty.
type ModPath = Vec<String>;

fn show(m: &[String]) -> String {
    if m.is_empty() { "crate".into() } else { m.join("::") }
}

/// The module a file under src/ defines (`lib.rs` the root, `x/mod.rs` the module `x`).
fn module_of(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let t = a.meta.require_list().map(|l| l.tokens.to_string()).unwrap_or_default();
            // cfg(test), cfg(all(test, ...)); not cfg(not(test))
            t.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == "test") && !t.contains("not")
        }
    })
}

/// The paths one file names, resolved to the file modules they lead into.
struct Collector<'a> {
    /// Every module a file defines (the resolution stops at the longest of them).
    files: &'a BTreeSet<ModPath>,
    /// The file's module.
    file: ModPath,
    /// Where the visitor is: the file's module, then inline modules.
    cur: ModPath,
    found: BTreeSet<ModPath>,
}

impl Collector<'_> {
    fn resolve(&mut self, segs: &[String]) {
        let Some(first) = segs.first() else { return };
        let (mut base, mut rest): (ModPath, &[String]) = match first.as_str() {
            "crate" => (Vec::new(), &segs[1..]),
            "self" => (self.cur.clone(), &segs[1..]),
            "super" => {
                let mut b = self.cur.clone();
                let mut r = segs;
                while r.first().map(String::as_str) == Some("super") {
                    b.pop();
                    r = &r[1..];
                }
                (b, r)
            }
            // a child module named without `self::`
            _ => {
                let mut child = self.cur.clone();
                child.push(first.clone());
                if !self.files.contains(&child) {
                    return;
                }
                (self.cur.clone(), segs)
            }
        };
        // down to the longest module that is a file
        let mut target = self.file_of(&base);
        while let Some(s) = rest.first() {
            base.push(s.clone());
            rest = &rest[1..];
            if self.files.contains(&base) {
                target = base.clone();
            }
        }
        if target != self.file {
            self.found.insert(target);
        }
    }

    /// The file that holds module `m` (an inline module lives in its parent's file).
    fn file_of(&self, m: &[String]) -> ModPath {
        let mut m = m.to_vec();
        while !self.files.contains(&m) && !m.is_empty() {
            m.pop();
        }
        m
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, t: &syn::UseTree) {
        match t {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                if n.ident != "self" {
                    prefix.push(n.ident.to_string());
                }
                let p = prefix.clone();
                self.resolve(&p);
                if n.ident != "self" {
                    prefix.pop();
                }
            }
            syn::UseTree::Rename(r) => {
                prefix.push(r.ident.to_string());
                let p = prefix.clone();
                self.resolve(&p);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => {
                let p = prefix.clone();
                self.resolve(&p);
            }
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.use_tree(prefix, t);
                }
            }
        }
    }

    /// Paths inside a macro's arguments (`matches!(x, crate::a::B)`, `format!("{}", super::f())`):
    /// every `crate`/`super`/`self` followed by `::` segments.
    fn tokens(&mut self, ts: proc_macro2::TokenStream) {
        let flat: Vec<proc_macro2::TokenTree> = ts.into_iter().collect();
        let mut i = 0;
        while i < flat.len() {
            match &flat[i] {
                proc_macro2::TokenTree::Group(g) => self.tokens(g.stream()),
                proc_macro2::TokenTree::Ident(id) if matches!(id.to_string().as_str(), "crate" | "super" | "self") => {
                    let mut segs = vec![id.to_string()];
                    let mut j = i + 1;
                    loop {
                        let colons = matches!(
                            (flat.get(j), flat.get(j + 1)),
                            (Some(proc_macro2::TokenTree::Punct(a)), Some(proc_macro2::TokenTree::Punct(b)))
                                if a.as_char() == ':' && b.as_char() == ':'
                        );
                        match (colons, flat.get(j + 2)) {
                            (true, Some(proc_macro2::TokenTree::Ident(n))) => {
                                segs.push(n.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    if segs.len() > 1 {
                        self.resolve(&segs);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, i: &'ast syn::Item) {
        let attrs = match i {
            syn::Item::Const(x) => &x.attrs,
            syn::Item::Enum(x) => &x.attrs,
            syn::Item::Fn(x) => &x.attrs,
            syn::Item::Impl(x) => &x.attrs,
            syn::Item::Macro(x) => &x.attrs,
            syn::Item::Mod(x) => &x.attrs,
            syn::Item::Static(x) => &x.attrs,
            syn::Item::Struct(x) => &x.attrs,
            syn::Item::Trait(x) => &x.attrs,
            syn::Item::Type(x) => &x.attrs,
            syn::Item::Use(x) => &x.attrs,
            _ => return syn::visit::visit_item(self, i),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, i);
        }
    }

    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_impl_item_fn(self, f);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if let Some((_, items)) = &m.content {
            self.cur.push(m.ident.to_string());
            for i in items {
                self.visit_item(i);
            }
            self.cur.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segs.len() > 1 && p.leading_colon.is_none() {
            self.resolve(&segs);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// The file-level graph of `sources` (module path, source text): which file modules each
/// one names outside its tests.
fn file_graph(sources: &[(ModPath, String)]) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let files: BTreeSet<ModPath> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut g = BTreeMap::new();
    for (m, text) in sources {
        let ast = syn::parse_file(text).unwrap_or_else(|e| panic!("{}: {e}", show(m)));
        let mut c = Collector {
            files: &files,
            file: m.clone(),
            cur: m.clone(),
            found: BTreeSet::new(),
        };
        c.visit_file(&ast);
        g.insert(m.clone(), c.found);
    }
    g
}

/// The crate's own source (the library: main.rs is the binary, a crate of its own).
fn sources() -> Vec<(ModPath, String)> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| {
            let rel = f.strip_prefix(&root).expect("under src").to_path_buf();
            (module_of(&rel), std::fs::read_to_string(&f).expect("read"))
        })
        .collect()
}

/// The top-level graph: a file's edges lifted to the top-level modules (the crate root
/// and edges inside one module are left out).
fn top_graph(files: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, deps) in files {
        let Some(top) = m.first() else { continue };
        let entry = g.entry(top.clone()).or_default();
        for d in deps {
            if let Some(t) = d.first()
                && t != top
            {
                entry.insert(t.clone());
            }
        }
    }
    g
}

/// Every circle of a graph, one per strongly connected component of two or more nodes
/// (Tarjan), each listed from its smallest node along edges.
fn circles<N: Ord + Clone>(g: &BTreeMap<N, BTreeSet<N>>) -> Vec<Vec<N>> {
    struct T<'a, N: Ord> {
        g: &'a BTreeMap<N, BTreeSet<N>>,
        index: BTreeMap<&'a N, usize>,
        low: BTreeMap<&'a N, usize>,
        stack: Vec<&'a N>,
        on: BTreeSet<&'a N>,
        out: Vec<Vec<&'a N>>,
    }
    fn strong<'a, N: Ord>(t: &mut T<'a, N>, v: &'a N) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let Some((w, _)) = t.g.get_key_value(w) else { continue };
            if !t.index.contains_key(w) {
                strong(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("v");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("v");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            strong(&mut t, v);
        }
    }
    t.out
        .into_iter()
        .map(|c| {
            let mut c: Vec<N> = c.into_iter().cloned().collect();
            c.sort();
            c
        })
        .collect()
}

/// Every dependency not below its module, and every import circle between top-level modules.
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
    for c in circles(g) {
        wrong.push(format!("import circle: {}", c.join(" <-> ")));
    }
    wrong
}

/// File-level circles not in KNOWN_FILE_CIRCLES, and known ones that are gone.
fn file_circle_changes(files: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<String> {
    let now: Vec<Vec<String>> = circles(files)
        .into_iter()
        .map(|c| c.iter().map(|m| show(m)).collect())
        .collect();
    let known: Vec<Vec<String>> = KNOWN_FILE_CIRCLES
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let mut out = Vec::new();
    for c in &now {
        if !known.contains(c) {
            out.push(format!("new file circle: {}", c.join(" <-> ")));
        }
    }
    for c in &known {
        if !now.contains(c) {
            out.push(format!(
                "no longer a circle (remove it from KNOWN_FILE_CIRCLES): {}",
                c.join(" <-> ")
            ));
        }
    }
    out
}

#[test]
fn modules_depend_only_on_their_lower_layers_and_never_in_a_circle() {
    let files = file_graph(&sources());
    let g = top_graph(&files);
    println!("module dependencies (non-test code):");
    for (m, deps) in &g {
        println!("  {m} -> {}", deps.iter().cloned().collect::<Vec<_>>().join(" "));
    }
    let wrong = violations(&g);
    assert!(wrong.is_empty(), "layering broken:\n  {}", wrong.join("\n  "));
}

#[test]
fn files_form_no_circle_but_the_known_ones() {
    let files = file_graph(&sources());
    let all = circles(&files);
    println!("file-level circles: {}", all.len());
    for c in &all {
        println!("  {}", c.iter().map(|m| show(m)).collect::<Vec<_>>().join(" <-> "));
        for m in c {
            let inside: Vec<String> = files[m].iter().filter(|d| c.contains(d)).map(|d| show(d)).collect();
            println!("      {} -> {}", show(m), inside.join(", "));
        }
    }
    let changes = file_circle_changes(&files);
    assert!(changes.is_empty(), "{}", changes.join("\n"));
}

fn planted(files: &[(&str, &str)]) -> Vec<(ModPath, String)> {
    files
        .iter()
        .map(|(m, t)| {
            (
                m.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect(),
                t.to_string(),
            )
        })
        .collect()
}

#[test]
fn paths_are_resolved_as_the_compiler_does() {
    let g = file_graph(&planted(&[
        ("", "pub mod config; pub mod engine; pub mod model; pub mod util;"),
        ("model", "pub struct Pos;"),
        ("util", "pub fn f() {}"),
        ("engine", "pub struct Run;"),
        ("config", "pub mod yaml; pub mod device;"),
        ("config::yaml", "pub struct Loc;"),
        (
            "config::device",
            r#"
            use super::super::engine::Run;            // two levels up, then down
            use super::yaml::Loc;                      // a sibling
            use crate::{model::Pos, util};             // a group
            // crate::report only in a comment
            fn g() -> String { let s = "crate::lab in a string"; format!("{}", self::h()) }
            fn h() -> bool { matches!(Some(1), Some(_) if crate::util::f() == ()) }
            #[cfg(test)]
            mod tests { use crate::engine::Run; use super::super::report; }
            "#,
        ),
    ]));
    let dev: Vec<String> = g[&vec!["config".to_string(), "device".to_string()]]
        .iter()
        .map(|m| show(m))
        .collect();
    assert_eq!(dev, ["config::yaml", "engine", "model", "util"]);
}

#[test]
fn a_planted_upward_import_and_a_planted_folder_circle_fail() {
    // config reaching engine through super::super:: (the text scanner let it pass)
    let mut files = file_graph(&sources());
    let planted_up = file_graph(&planted(&[
        ("config", "pub mod x;"),
        ("config::x", "use super::super::engine::Run;"),
        ("engine", ""),
    ]));
    files.extend(planted_up);
    let wrong = violations(&top_graph(&files));
    assert!(
        wrong.contains(&"config imports engine, which is not below it".to_string()),
        "{wrong:?}"
    );
    assert!(
        wrong
            .iter()
            .any(|w| w.starts_with("import circle:") && w.contains("config") && w.contains("engine")),
        "{wrong:?}"
    );
    // two files of one folder naming each other: a circle no top-level graph sees
    let mut files = file_graph(&sources());
    files.extend(file_graph(&planted(&[
        ("report", "pub mod a; pub mod b;"),
        ("report::a", "pub fn f() { super::b::g() }"),
        ("report::b", "pub fn g() { super::a::f() }"),
    ])));
    let changes = file_circle_changes(&files);
    assert!(
        changes.iter().any(|c| c == "new file circle: report::a <-> report::b"),
        "{changes:?}"
    );
    // a module no layer names
    let mut g = top_graph(&file_graph(&sources()));
    g.entry("novel".into()).or_default();
    assert!(
        violations(&g).contains(&"novel: not placed in a layer (add it to LAYERS)".to_string()),
        "a module outside LAYERS fails"
    );
}
