//! `qinglian brief`: the member units' briefing of a month or half year,
//! from the published versions ([`crate::brief`]).

use super::shared::block_on;
use super::{CommandResult, Done, Failure};
use crate::brief::{BriefArgs, BriefError};

/// Runs `brief` and prints where the briefing is.
pub(super) fn execute(args: BriefArgs) -> CommandResult {
    block_on(async {
        match crate::brief::execute(args).await {
            Ok(w) => {
                outln!(
                    "briefing {} ({} published night(s), up to {}): {}",
                    w.period.label,
                    w.nights,
                    w.end,
                    w.location
                );
                for f in &w.files {
                    outln!("  {f}");
                }
                Ok(Done::Ok)
            }
            Err(e @ BriefError::Usage(_)) => Err(Failure::Usage(e.to_string())),
            Err(e) => Err(Failure::Failed(e.to_string())),
        }
    })
}
