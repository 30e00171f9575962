//! # qinglian — the clean-social-organization pipeline
//!
//! Every night qinglian pulls what several government departments know about
//! each registered social organization, joins it on the unified social credit
//! code, scores it with declarative rules and publishes an integrity code
//! (清廉码) for every organization.
//!
//! ## Code map
//!
//! The modules in the order of the data flow. Each owns one invariant, and
//! none uses a module listed after it (`tests/it/layers.rs` checks this
//! table against the code): shared ground first, then the stages of a
//! night, then what runs them, then the tools around them.
//!
//! | module | stage | owns |
//! |---|---|---|
//! | [`keys`] | (shared) | one classification of every organization key, in Rust and as SQL functions |
//! | [`digest`] | (shared) | lowercase hex of content hashes |
//! | [`store`] | (shared) | one way to open `file://`, `memory://` and `s3://` URLs, settings from the environment |
//! | [`layout`] | (shared) | every path under a warehouse root |
//! | [`clock`] | (shared) | the injected wall clock: every read of the time and every wait |
//! | [`usage`] | (shared) | peak memory and bytes read and written per stage, from `/proc/self` |
//! | [`listen`] | (shared) | serving a router on a local address; the shutdown signal |
//! | [`project`] | configuration | every file of `schemas/`, `pipelines/`, `jobs/` checked before anything runs; all problems reported at once |
//! | [`source`] | 1 FETCH | records read as raw text in bounded batches, from object stores or paged HTTP APIs, with their positions |
//! | [`validate`] | 3 VALIDATE | every row canonical or quarantined with feed, position, field and reason |
//! | [`land`] | 2 LAND | raw payloads and canonical Parquet written once under `landing/<feed>/dt=/run=/`, never rewritten |
//! | [`merge`] | 2 MERGE | each part's delivery merged by its strategy (`snapshot`, `append`, `upsert`) into one complete snapshot, compacted into a new file |
//! | [`ledger`] | (state) | every record the warehouse keeps of runs, feeds, deliveries and jobs; `read = landed + quarantined + duplicates + tombstones` per feed, part and run; each part's watermark and listing; snapshots advance only when guarded |
//! | [`lease`] | (state) | one run per pipeline and date across machines: create-only generations, renewed, lapsing when the holder dies |
//! | [`catalog`] | (state) | the published versions: manifests and their verified reader, the only way anything reads a dataset |
//! | [`score`] | 4 JOIN, 5 SCORE | every feed resolved against the spine; every rule's hits with evidence and confidence; one profile per organization; the leads (unregistered subjects, `score::leads`); the session of the pipeline's engine, local or a Ballista cluster (`score::engine`, `score::ballista`) |
//! | [`publish`] | 6 PUBLISH | every data file checked against its contract (`schemas/out/`) and checksummed; one manifest per version, committed last with a create-only put |
//! | [`deliver`] | 6 DELIVER | code changes of a verified version to the platform: signed batches, one idempotency key per content, an outbox until acknowledged, dead letters; the Parquet drop |
//! | [`warnings`] | 5–6 WARN | every worsened colour or new red line raises one warning with a stable id; dispositions (pulled or pushed to the intake) recorded once per id and sequence before they are acknowledged, applied in sequence order as admitted by a business date; overdue and urges from the working-day calendar; new warnings pushed through their own outbox |
//! | [`report`] | (operators) | the self-contained HTML report of each run |
//! | [`explain`] | (operators, analysts) | why an organization has its colour, read from what a run wrote |
//! | [`run`] | one run | stages in order for one business date under its lease, guards, the run id and its attempt, interruption at stage boundaries |
//! | [`brief`] | (the 23 member units) | monthly and half-yearly workbooks and pages for the city, each district and each supervising unit, from published, verified versions only |
//! | [`serve`] | 7 SERVE | the public lookup (一码通查): only the `public` datasets of a verified manifest, indexed in memory; versions switch whole, a broken one is never taken |
//! | [`schedule`] | the scheduler | ticks from cron in the job's zone on an injected clock, catch-up, retries, time limits |
//! | [`metrics`] | (operators) | Prometheus metrics of the daemon |
//! | [`daemon`] | the daemon | the scheduler wired to real runs and their metrics |
//! | [`generate`] | (demo, tests, benchmarks) | deterministic synthetic feeds in the departments' own forms, with ground truth |
//! | [`simulator`] | (demo, tests) | the departments' paged APIs on 127.0.0.1, with faults on demand |
//! | [`platform`] | (demo, tests) | the oversight platform's intake on 127.0.0.1, with faults on demand |
//! | [`handlers`] | (demo, tests) | the platform's handlers disposing of warnings on a seeded schedule, their dispositions served on a paged API and pushed to the intake, with faults on demand |
//! | [`demo`] | (newcomers) | the nightly job end to end on its embedded defaults |
//! | [`bench`] | (benchmarks) | the bare DataFusion baseline and key throughput behind `BENCHMARKS.md` |
//! | [`cli`] | the `qinglian` binary | one file per command; exit codes: 0 ok, 1 run failed, 2 usage or configuration, 3 degraded |
//!

pub mod bench;
pub mod brief;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod deliver;
pub mod demo;
pub mod digest;
pub mod explain;
pub mod generate;
pub mod handlers;
pub mod keys;
pub mod land;
pub mod layout;
pub mod lease;
pub mod ledger;
pub mod listen;
pub mod merge;
pub mod metrics;
pub mod platform;
pub mod project;
pub mod publish;
pub mod report;
pub mod run;
pub mod schedule;
pub mod score;
pub mod serve;
pub mod simulator;
pub mod source;
pub mod store;
pub mod usage;
pub mod validate;
pub mod warnings;

/// The checkout the unit tests read the shipped configuration from: the
/// one `cargo test` runs in (Cargo sets `CARGO_MANIFEST_DIR` when it runs
/// a test), not the one the binary was compiled in — a build directory
/// shared by two clones may hold a test binary built in the other one.
#[cfg(test)]
pub(crate) fn checkout() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), Into::into)
}
