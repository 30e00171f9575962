//! # qinglian — the clean-social-organization pipeline
//!
//! Every night qinglian pulls what several government departments know about
//! each registered social organization, joins it on the unified social credit
//! code, scores it with declarative rules and publishes an integrity code
//! (清廉码) for every organization.
//!
//! ## Code map
//!
//! The stages run in this order; each owns one invariant.
//!
//! | module | stage | owns |
//! |---|---|---|
//! | [`project`] | configuration | every file of `schemas/`, `pipelines/`, `jobs/` checked before anything runs; all problems reported at once |
//! | [`keys`] | (shared) | one classification of every organization key, in Rust and as SQL functions |
//! | [`generate`] | (demo, tests, benchmarks) | deterministic synthetic feeds in the departments' own forms, with ground truth |
//! | [`store`] | (shared) | one way to open `file://`, `memory://` and `s3://` URLs, settings from the environment |
//! | [`cli`] | the `qinglian` binary | exit codes: 0 ok, 1 run failed, 2 usage or configuration |
//!
//! Stages still to come, in data-flow order: `source` (fetch), `land`,
//! `validate`, `join`, `score`, `publish`, `run`, `scheduler`
//! (see `DESIGN.md` of the project's shared documents).

pub mod cli;
pub mod generate;
pub mod keys;
pub mod land;
pub mod ledger;
pub mod project;
pub mod run;
pub mod simulator;
pub mod source;
pub mod store;
pub mod validate;
