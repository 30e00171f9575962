//! The module graph is the data flow: the code map in `src/lib.rs` lists
//! the top-level modules in order, and no module may use one listed after
//! it. A new module must be placed in the map before it can be used, so a
//! cycle between stages cannot grow back unnoticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The modules of the code map's table, in their order.
fn code_map(lib: &str) -> Vec<String> {
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! | [`"))
        .filter_map(|rest| rest.split_once("`]"))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The top-level module a file under `src/` belongs to.
fn owner(src: &Path, file: &Path) -> Option<String> {
    let first = file.strip_prefix(src).ok()?.components().next()?;
    let name = first.as_os_str().to_str()?;
    let name = name.strip_suffix(".rs").unwrap_or(name);
    (name != "lib" && name != "main").then(|| name.to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::<module>` a file's code (not its comments) names.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
        }
        // A grouped import: `use crate::{a, b::C};`
        if let Some(group) = code.split("crate::{").nth(1) {
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push((n + 1, name));
            }
        }
    }
    found
}

#[test]
fn no_module_uses_one_that_comes_after_it() {
    let root = &crate::support::root();
    let src = root.join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let order = code_map(&lib);
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    assert!(order.len() > 20, "the code map lists {order:?}");

    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut modules = std::collections::BTreeSet::new();
    for file in &files {
        let Some(module) = owner(&src, file) else {
            continue;
        };
        modules.insert(module.clone());
        let Some(&mine) = rank.get(module.as_str()) else {
            problems.push(format!(
                "{}: module `{module}` is not in the code map of src/lib.rs",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source file");
        for (line, used) in uses(&text) {
            if used == module || !rank.contains_key(used.as_str()) {
                continue;
            }
            if rank[used.as_str()] > mine {
                problems.push(format!(
                    "{}:{line}: `{module}` uses `{used}`, which comes after it in the code map",
                    file.strip_prefix(root).unwrap_or(file).display()
                ));
            }
        }
    }
    for listed in &order {
        if !modules.contains(listed) {
            problems.push(format!(
                "the code map of src/lib.rs lists `{listed}`, which has no file"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the module graph goes against the data flow:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_a_backward_use() {
    let text =
        "use crate::run::Clock;\nuse crate::{keys, score::Thing};\n// crate::cli in a comment\n";
    let names: Vec<String> = uses(text).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["run", "keys", "score"]);
    let map = "//! | [`keys`] | x |\n//! | [`run`] | y |\n";
    assert_eq!(code_map(map), ["keys", "run"]);
}
