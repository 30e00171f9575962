//! Record reading and mapping of the court (NDJSON) and credit (CSV, with
//! 万元 amounts) feeds: any file content is read into rows or refused with
//! an error, and every row read is mapped to a canonical row or
//! quarantined.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qinglian::project::Project;
use qinglian::source::{FetchOptions, PayloadSink, PayloadWriter, fetch, wanted_fields};
use qinglian::validate::{Mapper, source_sql_fields};

struct Discard;
impl std::io::Write for Discard {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl PayloadWriter for Discard {
    fn finish(self: Box<Self>) -> Result<(), String> {
        Ok(())
    }
}
struct Sink;
impl PayloadSink for Sink {
    fn open(&mut self, _: &str, _: bool) -> Result<Box<dyn PayloadWriter>, String> {
        Ok(Box::new(Discard))
    }
}

fn project() -> &'static Project {
    static P: OnceLock<Project> = OnceLock::new();
    P.get_or_init(|| {
        Project::load(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("root"),
        )
        .expect("project")
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tmp");
    for (feed, file) in [("court", "court/x.ndjson"), ("credit", "credit/x.csv")] {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, data).expect("write");
        let source = &project().sources[feed];
        let mut options = FetchOptions::default();
        options.vars.insert(
            "QINGLIAN_FEEDS".into(),
            dir.path().to_string_lossy().into_owned(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel(4);
            let fields = wanted_fields(source, &source_sql_fields(source));
            let schema = &project().schemas[&source.schema];
            let mapper = Mapper::new(
                source,
                schema,
                fields.clone(),
                Some(b"fuzz-key".to_vec()),
                0,
                std::sync::Arc::new(qinglian::keys::RegistryCodes::default()),
            )
            .expect("mapper");
            let fetching = tokio::spawn({
                let source = source.clone();
                async move { fetch(&source, fields, &options, tx, Box::new(Sink)).await }
            });
            while let Some(batch) = rx.recv().await {
                if let Ok(mapped) = mapper.map(&batch) {
                    // Every row read is landed or quarantined.
                    assert_eq!(
                        mapped.accepted.len() + mapped.quarantined.len(),
                        batch.rows.len()
                    );
                    assert_eq!(mapped.batch.num_rows(), mapped.accepted.len());
                }
            }
            let _ = fetching.await;
        });
    }
});
