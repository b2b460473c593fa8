//! Lists the web client's files (`../web`) for `http::web` to embed with `include_bytes!`, and
//! tells cargo to rebuild when any of them (or the set of them) changes. Only what a browser
//! loads is listed: `index.html`, `src/`, `i18n/` and `vendor/`'s scripts and licences, never
//! the browser tests, `node_modules` or the tooling's configuration.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Folders of `web/` whose files the browser loads.
const SERVED_DIRS: &[&str] = &["src", "i18n", "vendor"];
/// Kinds of file served (by extension); anything else in those folders stays out.
const SERVED_EXT: &[&str] = &["html", "js", "css", "json", "svg", "woff2", "png", "txt"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest.join("../web");
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let index = web.join("index.html");
    println!("cargo:rerun-if-changed={}", web.display());
    if index.is_file() {
        println!("cargo:rerun-if-changed={}", index.display());
        files.push(("index.html".to_string(), index));
    }
    for dir in SERVED_DIRS {
        walk(&web.join(dir), dir, &mut files);
    }
    files.sort();
    let mut out = String::from("/// (path under `web/`, contents), sorted by path.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        let abs = path.canonicalize().expect("a listed file exists");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("web_assets.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn walk(dir: &Path, rel: &str, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let child = format!("{rel}/{name}");
        if path.is_dir() {
            walk(&path, &child, files);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SERVED_EXT.contains(&e))
        {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push((child, path));
        }
    }
}
