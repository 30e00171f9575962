//! The project's configuration: `schemas/`, `pipelines/` (sources, rules,
//! pipelines) and `jobs/`, loaded in one place.
//!
//! Each file is parsed into the raw serde types of `raw` (unknown keys
//! rejected), then compiled into the validated [`model`] types, collecting
//! every problem of every file with its file and key path before reporting.
//! [`Project::validate`] adds the checks that need DataFusion: every rule
//! must plan against empty tables of the declared schemas.

mod compile;
pub mod crontab;
mod diag;
mod env;
pub mod model;
mod plan;
mod raw;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use compile::parse_cron;
pub use diag::Diagnostic;
pub use env::{Redactor, expand_env};
pub use model::*;
pub use plan::{mapping_expr, rule_context, sql_fields};
pub use types::arrow_type;

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project directory.
    pub root: PathBuf,
    /// Canonical schemas by feed.
    pub schemas: BTreeMap<String, FeedSchema>,
    /// Contracts of the published datasets (`schemas/out/`).
    pub contracts: BTreeMap<String, OutputContract>,
    /// Sources by feed.
    pub sources: BTreeMap<String, Source>,
    /// Rules in file order, files in name order.
    pub rules: Vec<Rule>,
    /// Pipelines by name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Jobs by name.
    pub jobs: BTreeMap<String, Job>,
    /// Things worth saying that are not problems (how a cron was read).
    pub notes: Vec<String>,
}

/// Why a project could not be loaded: every problem found.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration problem(s)", .0.len())]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl Project {
    /// Loads and compiles every configuration file, without planning rules.
    pub fn load(root: &Path) -> Result<Self, ConfigErrors> {
        Self::load_with_jobs(root, Path::new("jobs"))
    }

    /// Loads the project with its jobs from another folder (relative to the
    /// root, or absolute): `qinglian schedule --jobs DIR`.
    pub fn load_with_jobs(root: &Path, jobs: &Path) -> Result<Self, ConfigErrors> {
        let compile::Compiled {
            project,
            mut problems,
            ..
        } = compile::compile(root, jobs);
        if problems.is_empty() {
            Ok(project)
        } else {
            problems.sort();
            Err(ConfigErrors(problems))
        }
    }

    /// Loads, compiles and plans every rule: what `qinglian validate` runs.
    /// Rules are planned even when other files have problems, against the
    /// schemas that compiled, so one pass shows everything.
    pub async fn validate(root: &Path) -> Result<Self, ConfigErrors> {
        let compile::Compiled {
            project,
            mut problems,
            broken_schemas,
        } = compile::compile(root, Path::new("jobs"));
        problems.extend(plan::plan_rules(&project, &broken_schemas).await);
        problems.extend(plan::plan_mappings(&project));
        if problems.is_empty() {
            Ok(project)
        } else {
            problems.sort();
            problems.dedup();
            Err(ConfigErrors(problems))
        }
    }

    /// The rules of a pipeline, in order.
    pub fn pipeline_rules<'a>(&'a self, pipeline: &'a Pipeline) -> impl Iterator<Item = &'a Rule> {
        self.rules
            .iter()
            .filter(|r| pipeline.rule_files.contains(&r.file))
    }

    /// A one-line summary of what was loaded.
    pub fn summary(&self) -> String {
        format!(
            "{} schemas, {} sources, {} rules, {} pipelines, {} jobs",
            self.schemas.len(),
            self.sources.len(),
            self.rules.len(),
            self.pipelines.len(),
            self.jobs.len()
        )
    }
}
