//! `qinglian validate`: every configuration file checked and every rule
//! and mapping planned, all problems listed on standard output.

use std::path::{Path, PathBuf};

use super::shared::runtime;
use super::{CommandResult, Done, Failure};
use crate::project::Project;

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub(super) struct ValidateArgs {
    /// Project directory (holding schemas/, pipelines/, jobs/).
    #[arg(long, default_value = ".")]
    project: PathBuf,
}

/// Runs `validate`.
pub(super) fn execute(args: &ValidateArgs) -> CommandResult {
    validate(&args.project)
}

fn validate(root: &Path) -> CommandResult {
    let rt = runtime().map_err(Failure::Failed)?;
    match rt.block_on(Project::validate(root)) {
        Ok(project) => {
            // The warnings' configuration and calendar of every pipeline.
            let problems: std::collections::BTreeSet<String> = project
                .pipelines
                .keys()
                .flat_map(|p| crate::warnings::WarningsConfig::load(root, p).err())
                .flatten()
                .collect();
            if !problems.is_empty() {
                for p in &problems {
                    outln!("error: {p}");
                }
                outln!("{} problem(s) found in {}", problems.len(), root.display());
                return Ok(Done::Invalid);
            }
            for note in &project.notes {
                outln!("note: {note}");
            }
            outln!("ok: {}", project.summary());
            Ok(Done::Ok)
        }
        Err(errors) => {
            for d in &errors.0 {
                outln!("error: {d}");
            }
            outln!("{} problem(s) found in {}", errors.0.len(), root.display());
            Ok(Done::Invalid)
        }
    }
}
