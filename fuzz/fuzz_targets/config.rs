//! The configuration loaders: any text in a job, source, pipeline or
//! contract file is compiled or reported, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn project() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tmp");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("root");
        for sub in ["schemas", "pipelines", "jobs"] {
            copy(&root.join(sub), &dir.path().join(sub));
        }
        dir
    })
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("dir") {
        let p = e.expect("entry").path();
        let target = to.join(p.file_name().expect("name"));
        if p.is_dir() {
            copy(&p, &target);
        } else {
            std::fs::copy(&p, &target).expect("copy");
        }
    }
}

const FILES: [&str; 4] = [
    "jobs/fuzzed.toml",
    "pipelines/sources/court.toml",
    "pipelines/nightly.toml",
    "schemas/out/codes.toml",
];

fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let dir = project().path();
    let file = dir.join(FILES[usize::from(which) % FILES.len()]);
    let original = std::fs::read(&file).ok();
    std::fs::write(&file, text).expect("write");
    let _ = qinglian::project::Project::load(dir);
    match original {
        Some(o) => std::fs::write(&file, o).expect("restore"),
        None => std::fs::remove_file(&file).expect("remove"),
    }
});
